"""The type of a row's key as the watermark, the events and the file names carry it.

A key column's value is kept as JSON keeps it exactly: an integer, or a string (CHAR/VARCHAR keys,
and anything else written as text). None is "before the first key" (a watermark set to a cursor
value alone).
"""

KeyValue = int | str
Key = KeyValue | None
