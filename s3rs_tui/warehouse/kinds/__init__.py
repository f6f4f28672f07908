"""One module per warehouse kind, named as `[warehouse] kind` names it. Each holds everything that
kind does its own way (connection, SQL dialect, column types, verify's checksum SQL, settings it
refuses) on one `Warehouse` subclass exported as `ADAPTER`; adding a kind is adding a module here
(plus its tests). The registry in `s3rs_tui.warehouse` finds them by name."""
