"""Lab providers: the embedded processes (PostgreSQL, ...) that a drill runs against."""
