"""`python -m conveyor.api` prints the schema's SDL (the content of `schema.graphql`)."""

from __future__ import annotations

import sys

from conveyor.api.schema import schema_sdl

sys.stdout.write(schema_sdl())
