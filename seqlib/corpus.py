"""A reproducible byte-level corpus of real English text (the language-modelling chapter, bits per byte).

Sources, two Debian packages pinned by version and by the sha256 of their ``.deb`` (read in pure Python:
the ``ar`` archive, its ``data.tar.xz`` or ``.gz``; no dpkg):

- ``gcide``: dict-gcide 0.48.5+nmu2, the Collaborative International Dictionary of English
  (``usr/share/dictd/gcide.dict.dz``, dictzip, and its dictd index ``gcide.index``). GPL-2+.
  A document is one text block of the index, taken once however many headwords point to it (77,405 of
  the 203,645 index lines repeat a block: an entry's variants and derived words), in index order;
  key ``{headword}@{offset}`` with the block's first headword. The blocks of the ``00-database-*``
  headwords (dictd metadata, not dictionary text) are left out.
- ``python-docs``: python3.11-doc 3.11.2-6+deb12u8, the reStructuredText sources of the Python 3.11
  documentation (``usr/share/doc/python3.11/html/_sources/**/*.rst.txt``). PSF License Version 2.
  A document is one file, key its path under ``_sources/``, in sorted order.

Text is bytes as stored (the docs are UTF-8; gcide is mostly ASCII with its own accent markup and a few
non-UTF-8 bytes). The one change: a document's trailing whitespace (``bytes.rstrip``) becomes a single
``b"\\n"``, so every document ends with one newline.

Split by document, never inside one: ``u`` = the first 8 bytes of ``sha256(source + "/" + key)`` as a
big-endian integer / 2**64; train if ``u < 0.90``, val if ``u < 0.95``, else test. Within a split,
gcide's documents come first, then the docs', each source in its order above.

Files under :func:`corpus_dir` (``data/corpus``, or ``$SEQLIB_CORPUS``), per split: ``{split}.bin``
(the documents' bytes concatenated, uint8), ``{split}.docs.npy`` (int64 start of each document),
``{split}.sources.npy`` (uint8 index into ``manifest["sources"]``), ``{split}.keys.txt`` (one
``source/key`` a line); ``manifest.json`` (packages, licences, the rule, per split its bytes, documents
per source and the sha256 of the .bin; ``corpus_sha256`` = sha256 of the three split hashes, hex,
concatenated in SPLITS order). ``debs/`` caches the two downloads (or ``$SEQLIB_DEBS`` names a folder
that holds them, e.g. beside the code on an offline GPU node). Build: ``make corpus``. ``python -m
seqlib.corpus --pack FILE`` writes the built corpus as one ``.tar.xz`` (about 12 MB) and ``--unpack FILE``
restores it elsewhere, checked against its manifest and the pinned packages.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

CORPUS_ENV = "SEQLIB_CORPUS"
DEBS_ENV = "SEQLIB_DEBS"
SPLITS = ("train", "val", "test")
SOURCES = ("gcide", "python-docs")
FRACTIONS = {"train": 0.90, "val": 0.05, "test": 0.05}
SPLIT_RULE = ("u = first 8 bytes of sha256(source + '/' + key) as a big-endian integer / 2**64; "
              "train if u < 0.90, val if u < 0.95, else test")
NORMALISATION = "each document's trailing whitespace (bytes.rstrip) replaced by one b'\\n'; nothing else"
FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"
POOL = "http://deb.debian.org/debian/pool/main"

GCIDE_DICT = "usr/share/dictd/gcide.dict.dz"
GCIDE_INDEX = "usr/share/dictd/gcide.index"
GCIDE_METADATA = b"00-database-"
DOCS_DIR = "usr/share/doc/python3.11/html/_sources/"
DICTD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@dataclass(frozen=True)
class Package:
    """A pinned Debian package: where it lies in the pool, its sha256, and the licence of its text."""

    source: str
    name: str
    version: str
    pool_dir: str
    sha256: str
    licence: str
    files: str

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}_all.deb"

    @property
    def url(self) -> str:
        return f"{POOL}/{self.pool_dir}/{self.filename}"

    def entry(self) -> dict:
        """The manifest's record of the package."""
        return {"source": self.source, "package": self.name, "version": self.version, "url": self.url,
                "deb_sha256": self.sha256, "licence": self.licence, "files": self.files}


PACKAGES = (
    Package("gcide", "dict-gcide", "0.48.5+nmu2", "d/dict-gcide",
            "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f",
            "GPL-2+ (usr/share/doc/dict-gcide/copyright: 'GCIDE is free software; you can redistribute it "
            "and/or modify it under the terms of the GNU General Public License as published by the Free "
            "Software Foundation; either version 2, or (at your option) any later version.')",
            f"{GCIDE_DICT}, {GCIDE_INDEX}"),
    Package("python-docs", "python3.11-doc", "3.11.2-6+deb12u8", "p/python3.11",
            "50eb63e7f636c4281e9ce1b8f10386f1def42159eddce34fc1f41c46261df71b",
            "PSF-2.0 (usr/share/doc/python3.11-doc/copyright: 'PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2', "
            "an agreement on 'Python in source or binary form and its associated documentation'; the docs' "
            "license.rst.txt: 'Python software and documentation are licensed under the PSF License "
            "Agreement', code examples in them dual-licensed under the Zero-Clause BSD license)",
            f"{DOCS_DIR}**/*.rst.txt"),
)


def corpus_dir(root: str | Path | None = None) -> Path:
    """The corpus directory: ``root``, else ``$SEQLIB_CORPUS``, else ``data/corpus`` in the repository."""
    return Path(root or os.environ.get(CORPUS_ENV) or DEFAULT_DIR)


def build(root: str | Path | None = None, debs: str | Path | None = None) -> dict:
    """Build the corpus into :func:`corpus_dir` unless it is there for the pinned packages; the manifest.

    ``debs``: the folder of the two .deb files (default ``$SEQLIB_DEBS``, else ``debs/`` in the corpus
    directory); a missing one is downloaded into it.
    """
    out = corpus_dir(root)
    manifest = _built(out)
    if manifest is not None:
        return manifest
    folder = Path(debs or os.environ.get(DEBS_ENV) or out / "debs")
    paths = {pkg.source: fetch_deb(pkg, folder) for pkg in PACKAGES}
    return _write(out, read_documents(paths), [pkg.entry() for pkg in PACKAGES])


def load_manifest(root: str | Path | None = None) -> dict:
    """The manifest of the built corpus; FileNotFoundError (build it with ``make corpus``) if missing."""
    path = corpus_dir(root) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no corpus at {path.parent} ({MANIFEST} is missing): build it with `make corpus` "
                                f"(python -m seqlib.corpus), or point ${CORPUS_ENV} at a built one")
    return json.loads(path.read_text())


def load_split(split: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 memmap of the split's bytes, int64 start offset of each document in it)."""
    if split not in SPLITS:
        raise ValueError(f"unknown corpus split {split!r}; the splits are {SPLITS}")
    out = corpus_dir(root)
    info = load_manifest(out)["splits"][split]
    path = out / f"{split}.bin"
    size = path.stat().st_size if path.exists() else None
    if size != info["bytes"]:
        raise ValueError(f"{path} has {size} bytes, its manifest says {info['bytes']}: rebuild with `make corpus` "
                         f"(delete {out / MANIFEST} first)")
    starts = np.load(out / f"{split}.docs.npy")
    if len(starts) != sum(info["documents"].values()):
        raise ValueError(f"{split}.docs.npy has {len(starts)} documents, the manifest says {info['documents']}")
    return np.memmap(path, dtype=np.uint8, mode="r"), starts


@lru_cache(maxsize=4)
def unigram_bits(split: str = "test", root: str | Path | None = None) -> float:
    """Bits per byte on ``split`` of the byte-unigram model of the train split (add-one counts): what a
    model that ignores its context scores, the bar a text run must beat to say anything about context."""
    train, _ = load_split("train", root)
    counts = np.bincount(train, minlength=256) + 1
    data, _ = load_split(split, root)
    return float(-(np.bincount(data, minlength=256) * np.log2(counts / counts.sum())).sum() / len(data))


def split_of(source: str, key: str) -> str:
    """The split of a document, from the hash of ``source + "/" + key`` alone (see SPLIT_RULE)."""
    u = int.from_bytes(hashlib.sha256(f"{source}/{key}".encode()).digest()[:8], "big") / 2**64
    return "train" if u < 0.90 else "val" if u < 0.95 else "test"


def dictd_number(text: str | bytes) -> int:
    """A number of a dictd index (offset or length): base-64 digits of DICTD_B64, most significant first."""
    digits = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    if not digits:
        raise ValueError("empty dictd number")
    value = 0
    for c in digits:
        d = DICTD_B64.find(c)
        if d < 0:
            raise ValueError(f"{digits!r} is not a dictd number ({c!r} is not in its base-64 alphabet)")
        value = value * 64 + d
    return value


def gcide_documents(index: bytes, text: bytes) -> Iterator[tuple[str, bytes]]:
    """(key, block) of each gcide document in index order: each distinct block once, keyed by its first
    headword and offset; the blocks of ``00-database-*`` headwords left out."""
    first: dict[tuple[int, int], bytes] = {}
    metadata = set()
    for n, line in enumerate(index.splitlines(), 1):
        try:
            head, offset, length = line.split(b"\t")
            block = dictd_number(offset), dictd_number(length)
        except ValueError as e:
            raise ValueError(f"gcide.index line {n}: {line[:80]!r} is not 'headword TAB offset TAB length' "
                             f"({e})") from None
        first.setdefault(block, head)
        if head.startswith(GCIDE_METADATA):
            metadata.add(block)
    for (offset, length), head in first.items():
        if (offset, length) in metadata:
            continue
        if offset + length > len(text):
            raise ValueError(f"gcide.index: {head!r} points past the end of the dictionary text "
                             f"({offset}+{length} > {len(text)} bytes)")
        yield f"{head.decode()}@{offset}", text[offset : offset + length]


def read_documents(debs: dict[str, Path]) -> Iterator[tuple[str, str, bytes]]:
    """(source, key, text) of every document: gcide's in index order, then the docs' by sorted path.
    ``debs`` maps each source to its .deb."""
    gcide = deb_files(debs["gcide"], lambda name: name in (GCIDE_DICT, GCIDE_INDEX))
    for name in (GCIDE_DICT, GCIDE_INDEX):
        if name not in gcide:
            raise ValueError(f"{debs['gcide']} has no {name}: not the pinned dict-gcide")
    for key, block in gcide_documents(gcide[GCIDE_INDEX], gzip.decompress(gcide[GCIDE_DICT])):
        yield "gcide", key, block
    del gcide
    docs = deb_files(debs["python-docs"], lambda name: name.startswith(DOCS_DIR) and name.endswith(".rst.txt"))
    if not docs:
        raise ValueError(f"{debs['python-docs']} has no {DOCS_DIR}*.rst.txt: not the pinned python3.11-doc")
    for name in sorted(docs):
        yield "python-docs", name[len(DOCS_DIR):], docs[name]


def ar_members(data: bytes, where: str = "ar archive") -> dict[str, bytes]:
    """The members of an ``ar`` archive (a .deb), name -> bytes."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{where}: not an ar archive (no '!<arch>' header), so not a .deb")
    members, pos = {}, 8
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError(f"{where}: broken ar member header at byte {pos}")
        name = header[:16].decode("ascii", "replace").rstrip().rstrip("/")
        size = int(header[48:58])
        start = pos + 60
        if start + size > len(data):
            raise ValueError(f"{where}: member {name} is truncated ({size} bytes announced)")
        members[name] = data[start : start + size]
        pos = start + size + size % 2
    return members


def deb_files(path: str | Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The regular files of a .deb's ``data.tar.xz`` (or ``.gz``) whose path (no leading ``./``) passes
    ``wanted``, path -> bytes."""
    members = ar_members(Path(path).read_bytes(), str(path))
    data = [name for name in members if name.startswith("data.tar")]
    if not data:
        raise ValueError(f"{path}: no data.tar.* member (members: {sorted(members)})")
    modes = {"data.tar.xz": "r|xz", "data.tar.gz": "r|gz"}
    if data[0] not in modes:
        raise ValueError(f"{path}: {data[0]} is not supported (only data.tar.xz and data.tar.gz are read)")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(members[data[0]]), mode=modes[data[0]]) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if member.isfile() and wanted(name):
                files[name] = tar.extractfile(member).read()
    return files


def fetch_deb(pkg: Package, folder: Path) -> Path:
    """The verified .deb of ``pkg`` in ``folder``: the one there, else downloaded into it (plain HTTP from
    deb.debian.org, else ``apt-get download``, which goes through apt's proxy)."""
    path = folder / pkg.filename
    if path.exists():
        _check_sha256(pkg, path, f"{path} has")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as tmp:
        got = _download(pkg, Path(tmp), folder)
        _check_sha256(pkg, got, "the downloaded file has")
        os.replace(got, path)
    return path


def _download(pkg: Package, tmp: Path, folder: Path) -> Path:
    target = tmp / pkg.filename
    try:
        with urllib.request.urlopen(pkg.url, timeout=60) as response, open(target, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
        return target
    except OSError as e:  # URLError, HTTPError and timeouts are OSErrors
        http = f"{type(e).__name__}: {e}"
        target.unlink(missing_ok=True)
    try:
        done = subprocess.run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=tmp,
                              capture_output=True, text=True, timeout=900)
        apt = done.stderr.strip()[-400:] if done.returncode else None
    except (OSError, subprocess.TimeoutExpired) as e:
        apt = f"{type(e).__name__}: {e}"
    found = sorted(tmp.glob(f"{pkg.name}_*.deb"))
    if apt is None and found:
        return found[0]
    raise RuntimeError(f"cannot download {pkg.name} {pkg.version}: HTTP {pkg.url}: {http}; apt-get download: "
                       f"{apt or 'wrote no .deb'}. Copy {pkg.filename} (sha256 {pkg.sha256}) into {folder} "
                       f"(or into a folder named by ${DEBS_ENV}) and run `make corpus` again")


def _check_sha256(pkg: Package, path: Path, what: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != pkg.sha256:
        raise RuntimeError(f"{pkg.name} {pkg.version}: {what} sha256 {digest.hexdigest()}, the pinned one is "
                           f"{pkg.sha256} (another build or a broken download): delete it, then put Debian's "
                           f"{pkg.filename} there or let `make corpus` download it")


def _built(out: Path) -> dict | None:
    """The manifest in ``out`` if it is a complete corpus of the pinned packages and rule, else None."""
    try:
        manifest = load_manifest(out)
    except FileNotFoundError:
        return None
    same = (manifest.get("format") == FORMAT and manifest.get("split_rule") == SPLIT_RULE
            and manifest.get("packages") == [pkg.entry() for pkg in PACKAGES])
    complete = same and all((out / f"{s}.bin").exists() and (out / f"{s}.bin").stat().st_size == info["bytes"]
                            for s, info in manifest["splits"].items())
    return manifest if complete else None


class _SplitWriter:
    """One split's files in the build directory, written as the documents come."""

    def __init__(self, folder: Path, split: str) -> None:
        self.folder, self.split = folder, split
        self.bin = open(folder / f"{split}.bin", "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.starts: list[int] = []
        self.sources: list[int] = []
        self.keys: list[str] = []

    def add(self, source: str, key: str, text: bytes) -> None:
        self.starts.append(self.size)
        self.sources.append(SOURCES.index(source))
        self.keys.append(f"{source}/{key}")
        self.bin.write(text)
        self.sha256.update(text)
        self.size += len(text)

    def finish(self) -> dict:
        """Close the .bin, write the document files; the manifest's entry of the split."""
        self.bin.close()
        np.save(self.folder / f"{self.split}.docs.npy", np.asarray(self.starts, dtype=np.int64))
        np.save(self.folder / f"{self.split}.sources.npy", np.asarray(self.sources, dtype=np.uint8))
        (self.folder / f"{self.split}.keys.txt").write_text("".join(k + "\n" for k in self.keys), encoding="utf-8")
        counts = np.bincount(self.sources, minlength=len(SOURCES))
        return {"bytes": self.size, "documents": dict(zip(SOURCES, map(int, counts))),
                "sha256": self.sha256.hexdigest()}


def _write(out: Path, documents: Iterable[tuple[str, str, bytes]], packages: list[dict]) -> dict:
    """Write the corpus of ``documents`` ((source, key, text), each source in its order) into ``out``:
    all of it into a temporary directory, then moved in, the old manifest removed first and the new
    one moved last, so that a failed build leaves no manifest. The manifest."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    writers = {split: _SplitWriter(tmp, split) for split in SPLITS}
    try:
        for source, key, text in documents:
            writers[split_of(source, key)].add(source, key, text.rstrip() + b"\n")
        splits = {split: writer.finish() for split, writer in writers.items()}
        manifest = {
            "corpus": "byte-level English text of the language-modelling chapter (seqlib.corpus)",
            "format": FORMAT,
            "packages": packages,
            "sources": list(SOURCES),
            "normalisation": NORMALISATION,
            "fractions": FRACTIONS,
            "split_rule": SPLIT_RULE,
            "splits": splits,
            "corpus_sha256": hashlib.sha256("".join(splits[s]["sha256"] for s in SPLITS).encode()).hexdigest(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (out / MANIFEST).unlink(missing_ok=True)
        for path in sorted(tmp.iterdir()):
            if path.name != MANIFEST:
                os.replace(path, out / path.name)
        os.replace(tmp / MANIFEST, out / MANIFEST)
    finally:
        for writer in writers.values():
            writer.bin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _files() -> list[str]:
    """The files of a built corpus, the manifest first."""
    return [MANIFEST, *(f"{s}{ext}" for s in SPLITS for ext in (".bin", ".docs.npy", ".sources.npy", ".keys.txt"))]


def pack(path: str | Path, root: str | Path | None = None) -> Path:
    """The built corpus as one xz-compressed tar at ``path`` (about 12 MB for 51 MB of text): what travels
    to a machine that cannot download the packages (a GPU node), where :func:`unpack` restores it."""
    out = corpus_dir(root)
    if _built(out) is None:
        raise FileNotFoundError(f"no complete corpus of the pinned packages at {out}: build it with `make corpus`")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tarfile.open(tmp, "w:xz") as tar:
        for name in _files():
            tar.add(out / name, arcname=name)
    os.replace(tmp, path)
    return path


def unpack(path: str | Path, root: str | Path | None = None) -> dict:
    """Restore a corpus :func:`pack` wrote into :func:`corpus_dir`, checked before it is kept: the
    manifest is the pinned packages' and rule's, and each split's ``.bin`` has the manifest's size and
    sha256. A corpus that fails leaves nothing (a RuntimeError names the file). The manifest."""
    out = corpus_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=out))
    try:
        with tarfile.open(path, "r:*") as tar:
            names = sorted(m.name for m in tar.getmembers())
            if names != sorted(_files()):
                raise RuntimeError(f"{path}: holds {names[:6]}..., not the files of a packed corpus")
            tar.extractall(tmp, filter="data")
        manifest = _built(tmp)
        if manifest is None:
            raise RuntimeError(f"{path}: its manifest is not the pinned packages' corpus (or a split's size differs)")
        for split, info in manifest["splits"].items():
            digest = hashlib.sha256((tmp / f"{split}.bin").read_bytes()).hexdigest()
            if digest != info["sha256"]:
                raise RuntimeError(f"{path}: {split}.bin has sha256 {digest}, its manifest says {info['sha256']}")
        (out / MANIFEST).unlink(missing_ok=True)
        for name in _files()[1:]:
            os.replace(tmp / name, out / name)
        os.replace(tmp / MANIFEST, out / MANIFEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m seqlib.corpus``: build the corpus (if needed) and print a line per split."""
    parser = argparse.ArgumentParser(prog="python -m seqlib.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help=f"the corpus directory (default ${CORPUS_ENV}, else data/corpus)")
    parser.add_argument("--debs", help=f"the folder of the two .deb files (default ${DEBS_ENV}, else ROOT/debs)")
    parser.add_argument("--pack", metavar="FILE", help="then write the corpus to FILE (.tar.xz) for another machine")
    parser.add_argument("--unpack", metavar="FILE", help="restore and check a packed corpus instead of building one")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        manifest = unpack(args.unpack, args.root) if args.unpack else build(args.root, args.debs)
    except (OSError, RuntimeError, tarfile.TarError) as e:
        print(f"seqlib.corpus: {e}", file=sys.stderr)
        return 1
    if args.pack:
        print(f"packed into {pack(args.pack, args.root)} ({Path(args.pack).stat().st_size / 1e6:.1f} MB)")
    for split in SPLITS:
        info = manifest["splits"][split]
        docs = ", ".join(f"{n:,} {source}" for source, n in info["documents"].items())
        print(f"{split:5s} {info['bytes']:>12,} bytes  {docs} documents  sha256 {info['sha256'][:16]}")
    print(f"corpus {corpus_dir(args.root)}: sha256 {manifest['corpus_sha256']} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
