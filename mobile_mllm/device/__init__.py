"""device subpackage."""
