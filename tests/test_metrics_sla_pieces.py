"""mem34 (issue 20): the per-SLA families' pieces made as they are read (``SlaPieces``).

The chunks of per-SLA text are no longer kept between scrapes; each piece is joined and
encoded from the SLAs' rows when read. These tests hold the pieces to the text the kept
chunks made (each family's header, then its lines in SLA order), their declared length to
the bytes sent, and every way of reading them (iterating, indexing, slicing) to one another.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics.sla_text import _ENCODED_HEADERS, CHUNK_SLAS, SlaPieces, _encoded_length

FAMILIES = len(_ENCODED_HEADERS)
_line = st.one_of(
    st.just(""),
    st.text(alphabet='abc="{},. 0123456789\n', min_size=1, max_size=30),
    st.text(min_size=1, max_size=12),  # any character: UTF-8 longer than the string
)
_rows = st.lists(st.tuples(*[_line] * FAMILIES), max_size=3 * CHUNK_SLAS + 5)
_pieces = st.lists(st.binary(max_size=20), max_size=3)


def expected(
    head: list[bytes], rows: list[tuple[str, ...]], info: bytes, tail: list[bytes]
) -> bytes:
    """The body as the kept chunks wrote it: each family's header, then its lines."""
    body = b"".join(head)
    for family, header in enumerate(_ENCODED_HEADERS):
        body += header + "".join(row[family] for row in rows).encode("utf-8")
    return body + info + b"".join(tail)


@settings(max_examples=60, deadline=None)
@given(_pieces, _rows, st.binary(max_size=30), _pieces, _pieces)
def test_pieces_are_the_kept_chunks_text(
    head: list[bytes],
    rows: list[tuple[str, ...]],
    info: bytes,
    tail: list[bytes],
    more: list[bytes],
) -> None:
    pieces = SlaPieces(head, rows, info, tail)
    body = expected(head, rows, info, tail)
    assert b"".join(pieces) == body
    assert pieces.nbytes == len(body)
    assert list(pieces) == [pieces[i] for i in range(len(pieces))]
    assert list(pieces) == pieces[:]
    assert list(pieces)[-1:] == [pieces[-1]]
    followed = pieces.followed_by(more)
    assert b"".join(followed) == body + b"".join(more)
    assert followed.nbytes == len(body) + sum(map(len, more))
    # The length the caller gives (each row's, summed as SlaFamilies keeps them) is the same.
    given_size = SlaPieces(head, rows, info, tail, size=sum(map(_encoded_length, rows)))
    assert given_size.nbytes == pieces.nbytes


def test_pieces_out_of_range_and_chunking() -> None:
    rows = [tuple(f"f{f}s{s}\n" for f in range(FAMILIES)) for s in range(CHUNK_SLAS + 1)]
    pieces = SlaPieces([b"h"], rows, b"i", [b"t"])
    # head, then per family its header and two chunks, then info and tail
    assert len(pieces) == 1 + FAMILIES * 3 + 2
    assert pieces[1] == _ENCODED_HEADERS[0]
    assert pieces[2] == "".join(f"f0s{s}\n" for s in range(CHUNK_SLAS)).encode()
    assert pieces[3] == f"f0s{CHUNK_SLAS}\n".encode()
    for index in (len(pieces), -len(pieces) - 1):
        try:
            pieces[index]
        except IndexError:
            pass
        else:
            raise AssertionError(f"piece {index} read")


def test_non_ascii_lines_count_their_encoded_bytes() -> None:
    row = ("é\n",) + ("",) * (FAMILIES - 1)
    assert _encoded_length(row) == 3
    assert SlaPieces((), [row], b"").nbytes == sum(map(len, _ENCODED_HEADERS)) + 3
