"""``python -m regman``."""

from regman.cli import main

if __name__ == "__main__":
    main()
