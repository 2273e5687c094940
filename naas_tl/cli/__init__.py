"""The `naas-tl` command line: argument parsing and one function per subcommand."""
from naas_tl.cli.main import main

__all__ = ["main"]
