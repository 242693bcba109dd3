"""Walking a repository: .gitignore (nested, negated), tool folders, binaries, huge files, symlinks."""

from __future__ import annotations

from pathlib import Path

from conveyor.indexer.walker import IgnoreRules, walk_repository


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_gitignored_files_and_folders_are_skipped_including_nested_rules_and_negations(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".gitignore": "*.log\ndist/\n",
            "app.py": "x = 1\n",
            "server.log": "log\n",
            "dist/bundle.js": "var a;\n",
            "pkg/.gitignore": "secret.txt\n!keep.log\n",
            "pkg/secret.txt": "s\n",
            "pkg/keep.log": "kept by negation\n",
            "pkg/mod.py": "y = 2\n",
            "node_modules/lib/index.js": "z\n",
            ".git/config": "[core]\n",
        },
    )
    found = {f.relative for f in walk_repository(tmp_path)}
    assert found == {".gitignore", "app.py", "pkg/.gitignore", "pkg/keep.log", "pkg/mod.py"}


def test_git_info_exclude_is_honoured(tmp_path: Path) -> None:
    _write(tmp_path, {".git/info/exclude": "local.py\n", "local.py": "a\n", "shared.py": "b\n"})
    assert {f.relative for f in walk_repository(tmp_path)} == {"shared.py"}


def test_binaries_empty_and_huge_files_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path, {"small.py": "print(1)\n", "big.txt": "x" * 5000, "empty.py": ""})
    (tmp_path / "data.bin.txt").write_bytes(b"abc\0def")
    (tmp_path / "image.png").write_bytes(b"not really a png but the extension says binary")
    found = {f.relative for f in walk_repository(tmp_path, max_file_bytes=1000)}
    assert found == {"small.py"}


def test_symlinks_are_not_followed_out_of_the_repository(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, {"secret.py": "token = 1\n"})
    repo = tmp_path / "repo"
    _write(repo, {"main.py": "pass\n"})
    (repo / "linked_dir").symlink_to(outside, target_is_directory=True)
    (repo / "linked_file.py").symlink_to(outside / "secret.py")
    assert {f.relative for f in walk_repository(repo)} == {"main.py"}


def test_ignore_rules_answer_for_single_paths_as_watch_events_need(tmp_path: Path) -> None:
    _write(tmp_path, {".gitignore": "build/\n*.tmp\n", "build/out.py": "", "src/a.py": "", "src/b.tmp": ""})
    rules = IgnoreRules(tmp_path)
    assert rules.ignored(tmp_path / "build" / "out.py")
    assert rules.ignored(tmp_path / "src" / "b.tmp")
    assert not rules.ignored(tmp_path / "src" / "a.py")
    assert rules.ignored(tmp_path.parent / "elsewhere.py")
