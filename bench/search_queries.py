"""The hand-labelled natural-language queries of the search evaluation (`bench/bench_search.py`).

Each is a description in other words than the symbol's name, with the answers that count as found: a path
suffix and the qualified symbol. Exact-name and name-part queries are drawn from the index itself (see
`bench_search.sample_name_queries`), so they need no labels here.
"""

from __future__ import annotations

# (query, [(path suffix, qualified symbol), ...])
DESCRIBED: list[tuple[str, list[tuple[str, str]]]] = [
    ("wildcard pattern matching of file names", [("/fnmatch.py", "fnmatch"), ("/fnmatch.py", "fnmatchcase")]),
    ("quote a string so a shell reads it as one word", [("/shlex.py", "quote")]),
    ("split a command line into arguments the way a shell does", [("/shlex.py", "split")]),
    ("copy a whole directory tree recursively", [("/shutil.py", "copytree")]),
    ("delete a directory and everything inside it", [("/shutil.py", "rmtree")]),
    ("find the location of an executable program on the PATH", [("/shutil.py", "which")]),
    (
        "show the differences between two lists of lines",
        [("/difflib.py", "unified_diff"), ("/difflib.py", "ndiff"), ("/difflib.py", "context_diff")],
    ),
    ("best close matches of a word among possible candidates", [("/difflib.py", "get_close_matches")]),
    (
        "wrap a paragraph of text to a maximum line width",
        [("/textwrap.py", "wrap"), ("/textwrap.py", "fill"), ("/textwrap.py", "TextWrapper")],
    ),
    ("remove common leading whitespace from every line", [("/textwrap.py", "dedent")]),
    ("temporary directory removed automatically afterwards", [("/tempfile.py", "TemporaryDirectory")]),
    (
        "break a URL into scheme, host, path and query",
        [("/urllib/parse.py", "urlparse"), ("/urllib/parse.py", "urlsplit")],
    ),
    (
        "percent-encode special characters for use in a URL",
        [("/urllib/parse.py", "quote"), ("/urllib/parse.py", "quote_plus")],
    ),
    ("encode a dictionary of parameters as a query string", [("/urllib/parse.py", "urlencode")]),
    ("traverse a directory tree yielding folders and file names", [("/os.py", "walk"), ("/os.py", "fwalk")]),
    (
        "guess the media type of a file from its extension",
        [("/mimetypes.py", "guess_type"), ("/mimetypes.py", "MimeTypes.guess_type")],
    ),
    ("serialize a Python object to a JSON formatted string", [("/json/__init__.py", "dumps")]),
    ("read rows of a CSV file as dictionaries keyed by the header", [("/csv.py", "DictReader")]),
    ("decorator that memoizes a function's results", [("/functools.py", "lru_cache"), ("/functools.py", "cache")]),
    ("count how many times each item occurs", [("/collections/__init__.py", "Counter")]),
    ("tuple subclass whose fields have names", [("/collections/__init__.py", "namedtuple")]),
    (
        "run an external command and capture what it prints",
        [("/subprocess.py", "run"), ("/subprocess.py", "check_output")],
    ),
    ("encode binary data as base64 text", [("/base64.py", "b64encode"), ("/base64.py", "standard_b64encode")]),
    ("compare two files to see whether they are identical", [("/filecmp.py", "cmp")]),
    (
        "pretty print a nested data structure",
        [("/pprint.py", "pprint"), ("/pprint.py", "pformat"), ("/pprint.py", "PrettyPrinter")],
    ),
    (
        "format the current exception and its traceback as text",
        [("/traceback.py", "format_exc"), ("/traceback.py", "format_exception")],
    ),
    ("pick a random element from a non-empty sequence", [("/random.py", "Random.choice")]),
    ("shuffle a list in place at random", [("/random.py", "Random.shuffle")]),
    ("middle value of a list of numbers", [("/statistics.py", "median")]),
    ("compress bytes in the gzip format", [("/gzip.py", "compress")]),
    ("parse command line options and positional arguments", [("/argparse.py", "ArgumentParser")]),
    (
        "send an email message through an SMTP server",
        [("/smtplib.py", "SMTP.send_message"), ("/smtplib.py", "SMTP.sendmail")],
    ),
    ("push an item onto a heap keeping the heap invariant", [("/heapq.py", "heappush")]),
    ("thread-safe first-in first-out queue", [("/queue.py", "Queue")]),
    ("lock that the same thread may acquire several times", [("/threading.py", "RLock"), ("/threading.py", "_RLock")]),
    (
        "read settings from an INI configuration file",
        [("/configparser.py", "ConfigParser"), ("/configparser.py", "RawConfigParser.read")],
    ),
    ("render rows and columns as a table in the terminal", [("/rich/table.py", "Table")]),
    ("progress bar for long running work", [("/rich/progress.py", "Progress"), ("/rich/progress.py", "track")]),
    ("syntax highlighting of source code in the console", [("/rich/syntax.py", "Syntax")]),
    ("serve static files from a folder", [("/starlette/staticfiles.py", "StaticFiles")]),
    ("HTTP response whose body is JSON", [("/starlette/responses.py", "JSONResponse")]),
    ("send an HTTP GET request", [("/httpx/_api.py", "get"), ("/httpx/_client.py", "Client.get")]),
    ("when a cron schedule fires next", [("/croniter/croniter.py", "croniter.get_next")]),
    ("match a path against gitignore style patterns", [("/pathspec/pathspec.py", "PathSpec.match_file")]),
    ("prompt the user to confirm yes or no", [("/click/termui.py", "confirm")]),
]
