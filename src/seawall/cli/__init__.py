"""The ``seawall`` command line: parses arguments and hands over to the library."""
