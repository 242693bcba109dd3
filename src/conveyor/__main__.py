"""`python -m conveyor ...` runs the `conveyor` command (the supervisor starts its workers this way)."""

from conveyor.cli.entry import main

if __name__ == "__main__":
    main()
