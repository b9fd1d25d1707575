"""slawatch's own asyncio SIP stack (RFC 3261 UAC side), shared by the voice probes.

Why our own: no maintained Python SIP library is both asyncio-native and a correct UAC with
UDP retransmission timers (see README.md, "Voice probes"). Layers, bottom up:

``headers`` -- pure: ``Headers``, ``Via``, ``NameAddr`` and their parsers (re-exported by
  ``message``, so import everything from ``probes.sip.message``).
``message`` -- pure: parse/encode, framing, builders.
  ``parse_message(bytes) -> SipRequest | SipResponse`` (raises only ``ParseError``, whose
  ``.reason`` is ``malformed`` | ``too_large``; limit ``MAX_MESSAGE_BYTES`` = 64 KiB).
  ``Headers`` (immutable, case-insensitive, compact forms expanded: ``get``, ``get_all`` splits
  Via/Contact/Route lists, ``with_added``, ``with_replaced``, ``without``, ``prepend``).
  ``SipRequest(method=, uri=, headers=, body=)`` / ``SipResponse(status=, reason=, ...)``:
  ``.encode()`` (Content-Length always written), ``.cseq -> (n, METHOD)``, ``.top_via``,
  ``.call_id``.
  ``parse_via``, ``parse_name_addr`` (``.tag``), ``parse_cseq``, ``StreamFramer``,
  ``new_branch``, ``new_tag``, ``new_call_id``, ``make_response``, ``build_2xx_ack``,
  ``build_non2xx_ack``, ``build_cancel``.
``transport`` -- ``Target(transport="udp"|"tcp"|"tls", host, port, bind_host, bind_port,
  ssl_context, server_hostname)``, ``open_transport``; errors are ``TransportError.reason`` tokens
  (``connection_refused``, ``icmp_unreachable``, ``tls_handshake_failed``, ``connection_closed``,
  ``malformed_response``, ``message_too_large``...).
``transaction`` -- ``SipEndpoint.open(target, t1=0.5, t2=4.0, on_request=handler)``:
  ``await ep.request(req)`` (non-INVITE, Timer E/F) -> final ``SipResponse``;
  ``tx = ep.invite(req, on_provisional=cb)`` -> ``await tx.final_response()``; non-2xx ACK is
  sent by the transaction; for a 2xx call ``tx.ack(build_2xx_ack(tx.request, resp, body))``;
  ``await tx.cancel()``; requests from the peer (BYE) reach ``handler(ep, req)``, which answers
  with ``ep.respond(req, 200, "OK")``. Failures raise ``TransactionError`` (``.reason``:
  ``timeout`` or a transport token). Build requests with ``build_request(...)`` (no Via: the
  endpoint stamps Via + branch + rport when sending).
``digest`` -- RFC 8760 digest auth (MD5, SHA-256, SHA-512-256): ``authorize(request, response,
  credentials)`` -> the retry request with Authorization/Proxy-Authorization and CSeq + 1.
``options`` -- ``SipBaseOptions`` (pydantic), the options every SIP probe kind shares.
"""
