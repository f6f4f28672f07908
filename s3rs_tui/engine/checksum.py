"""MySQL's side of a checksum comparison (see runtime/checksum.py for the canonical text)."""

from s3rs_tui.runtime.checksum import ChecksumDialect

MYSQL_CHECKSUM = ChecksumDialect(
    {"bool": "({c} + 0)", "number": "({c} + 0)", "text": "CONVERT({c} USING utf8mb4)",
     # NULL for zero and impossible dates; %% because pymysql fills in %s parameters
     "date": "DATE_FORMAT({c} + INTERVAL 0 DAY, '%%Y-%%m-%%d')",
     "timestamp": "DATE_FORMAT({c} + INTERVAL 0 SECOND, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')",
     "binary": "LOWER(HEX({c}))"},
    "CAST(CONV(SUBSTRING({h}, 1, {n}), 16, 10) AS UNSIGNED)", "{k} DIV {n}", md5="MD5({t})",
    key_text="CONVERT({c} USING utf8mb4)", sum_type="", mysql=True)
