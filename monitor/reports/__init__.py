"""Reports: from a results file (``build``), from the store (``stored``), the whole document with
the support section (``full``), and the JSON Lines results reader (``results``)."""
