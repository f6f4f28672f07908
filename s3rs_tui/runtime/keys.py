"""The type of a row's key as the watermark, the events and the file names carry it.

A key column's value is kept as JSON keeps it exactly: an integer, or a string (CHAR/VARCHAR and
DATE/DATETIME keys, and anything else written as text). A row's key is a tuple of them, one per
key column (`KeyParts`); events and screens show it as one value (`Key`: the value of a one-column
key, `10001, 1986-06-26` for several columns). None is "before the first key" (a watermark set to
a cursor value alone).
"""

KeyValue = int | str
Key = KeyValue | None
KeyParts = tuple[KeyValue, ...]  # () = the table has no unique key: after a whole cursor value


def shown_key(key: KeyParts | None) -> Key:
    """A key as events and screens show it: a one-column key as its value (as before composite
    keys), several columns as `10001, 1986-06-26`, no key as None."""
    if not key:
        return None
    return key[0] if len(key) == 1 else ", ".join(str(value) for value in key)
