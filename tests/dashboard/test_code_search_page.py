"""The code search page: a query and a mode (words to hybrid) sent to `searchCode`, hits in a table, both kept
in the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from conveyor.indexer import CodeIndex
from conveyor.indexer.embedding import OfflineEmbedder
from conveyor.indexer.embedjobs import embed_missing
from tests.dashboard.conftest import Browsing, Dashboard

SOURCE = '''
def send_email(to, subject, body):
    """Deliver a mail message to a recipient over SMTP."""


def shuffle_deck(cards):
    """Randomly reorder the playing cards."""
'''


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("wordllama")
    source = tmp_path / "repo" / "tools.py"
    source.parent.mkdir()
    source.write_text(SOURCE)
    index_path = tmp_path / "index.sqlite"
    monkeypatch.setenv("CONVEYOR_INDEX_PATH", str(index_path))
    index = CodeIndex(index_path)
    try:
        index.index_file(source)
        embed_missing(index, OfflineEmbedder(), [], batch=64)
    finally:
        index.close()
    return source


async def test_a_search_in_hybrid_mode_lists_hits_and_keeps_query_and_mode_in_the_url(
    dashboard: Dashboard, browsing: Browsing, indexed: Path
) -> None:
    page = await browsing.open(dashboard, role="viewer", route="#/code")
    await page.get_by_label("Search the code", exact=True).fill("randomly reorder cards")
    await page.get_by_label("Mode", exact=True).select_option("SEMANTIC")
    await page.get_by_role("button", name="Search").click()
    rows = page.locator(".code-hits tbody tr")
    await expect(rows.first).to_contain_text("shuffle_deck")
    await expect(page).to_have_url(dashboard.url + "#/code?q=randomly+reorder+cards&mode=SEMANTIC")
    await page.get_by_label("Mode", exact=True).select_option("HYBRID")
    await expect(page).to_have_url(dashboard.url + "#/code?q=randomly+reorder+cards&mode=HYBRID")
    await expect(rows.first).to_contain_text("shuffle_deck")
    await browsing.screenshot("code-search")


async def test_a_search_error_is_shown_on_the_page(dashboard: Dashboard, browsing: Browsing, indexed: Path) -> None:
    page = await browsing.open(dashboard, role="viewer", route="#/code?q=%5Bunclosed&mode=REGEX")
    await expect(page.locator("#code-results")).to_contain_text("regex is not valid")
