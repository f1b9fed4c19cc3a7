"""Text cnnbench reads back from disk (a run directory's YAML and JSON files, the config inside a
checkpoint) is someone else's: it is read as bounded plain data, never as a stream to follow.

`read_stored_bytes` reads only a regular file (a link may lead to one), of at most MAX_BYTES: a
link to /dev/zero, a FIFO that never ends or a file of gigabytes is refused before it is read.
`read_stored` (UTF-8 text), `read_stored_json` and `read_stored_rows` (CSV) read through it:
every file of a run or sweep directory that cnnbench reads back comes through one of these.
`stored_yaml` parses YAML as `yaml.safe_load` does (no tags, so no Python objects), refusing
what cnnbench and Hydra never write and what would only serve to exhaust the reader: anchors
and aliases (`&a` / `*a`: a few lines of them expand to billions of nodes once a config is
copied or resolved), nesting deeper than MAX_DEPTH (which would end in a RecursionError), and
more than MAX_BYTES of text. Every problem is a `StoredTextError`, a ValueError that says what
was wrong in a few words, for the caller to put in its own paragraph.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator

import yaml

MAX_BYTES = 16 * 1024 * 1024  # a run's config.yaml is a few kB, a metrics.json some 100 kB
MAX_DEPTH = 64                # cnnbench's configs nest 4 levels deep


class StoredTextError(ValueError):
    """A stored file or text that cnnbench does not read: the message says why, briefly."""


def _too_large(size: int, limit: int = MAX_BYTES) -> StoredTextError:
    return StoredTextError(f"it is {size:,} bytes, more than the {limit:,} cnnbench reads "
                           f"of such a file")


def read_stored_bytes(path: Path | str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. Opened without
    blocking (a FIFO does not hang it); OSError as `open` raises it, StoredTextError for a file
    that is not a regular one or is too large."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise StoredTextError("it is not a regular file (a device, a pipe or a socket)")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise _too_large(size, limit)
    return b"".join(chunks)


def read_stored(path: Path | str, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file at `path` (`read_stored_bytes`); StoredTextError also
    for text that is not UTF-8."""
    data = read_stored_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StoredTextError(f"it is not UTF-8 text ({err.reason} at byte {err.start})") from None


def read_stored_json(path: Path | str) -> Any:
    """The JSON data of the file at `path` (`read_stored`, then `json.loads`); StoredTextError
    for text that is not JSON or nests too deep to read."""
    try:
        return json.loads(read_stored(path))
    except StoredTextError:
        raise
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deep
        raise StoredTextError(f"it is not JSON ({str(err)[:120] or type(err).__name__})") from None


def read_stored_rows(path: Path | str) -> list[dict[str, str]]:
    """The rows of the CSV file at `path` (a header, then one dict per row); StoredTextError
    for a file that `read_stored` refuses or that is not CSV."""
    try:
        return list(csv.DictReader(io.StringIO(read_stored(path), newline="")))
    except csv.Error as err:
        raise StoredTextError(f"it is not CSV ({err})") from None


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases and nesting deeper than MAX_DEPTH while it
    composes, before anything is built from them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise StoredTextError("it holds a YAML alias (*name), which cnnbench never writes")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise StoredTextError(f"it holds a YAML anchor (&{event.anchor}), which cnnbench "
                                  f"never writes")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise StoredTextError(f"it nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def stored_yaml(text: str) -> Any:
    """`text` as plain YAML data (see the module docstring); StoredTextError otherwise."""
    if len(text) > MAX_BYTES:
        raise _too_large(len(text.encode("utf-8", "surrogatepass")))
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except StoredTextError:
        raise
    except yaml.YAMLError as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise StoredTextError(f"it is not plain YAML ({first})") from None
    except (ValueError, RecursionError, MemoryError) as err:  # an integer of 5,000 digits
        raise StoredTextError(f"it is not plain YAML ({type(err).__name__}: "
                              f"{str(err)[:120]})") from None
    finally:
        loader.dispose()


def read_stored_yaml(path: Path | str) -> Any:
    """The plain YAML data of the file at `path` (`read_stored`, then `stored_yaml`)."""
    return stored_yaml(read_stored(path))


# ${a.b.c}: a reference to another key of the same text, no resolver involved
_REFERENCE = re.compile(r"\$\{[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*\}")


def resolvers(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, text) of every string in `node` (plain data from `stored_yaml`) with a
    ${...} that would run a resolver (${oc.env:...}, ${now:...}) rather than refer to another
    key: stored text is resolved, if at all, only where it refers to itself."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from resolvers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from resolvers(v, f"{key}[{i}]")
    elif isinstance(node, str) and "${" in node and not _REFERENCE.fullmatch(node):
        yield key, node


def resolver_free(data: Any) -> bool:
    """Whether every interpolation in `data` only refers to another key."""
    return next(resolvers(data), None) is None
