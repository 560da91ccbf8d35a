"""Has a ``standard`` run learned its position table? The measurement behind docs/validation.md.

MLM-``standard`` does not see word order at ``cpu_small``. This script asks whether the learned absolute
position table (BERT's, ``mechanism.position_embeddings``) has moved away from its random initialisation and
taken on an ordering: a table that orders positions gives neighbouring rows similar vectors, a random one
does not. It prints, for the trained table and for the run's own initial table (rebuilt from the run's seed,
as the trainer builds it), the root-mean-square entry, the root-mean-square change from initialisation, and
the mean cosine similarity of centred rows at lags 1, 5 and 50.

    python benchmarks/validation/position_table.py RUN_DIR [--seed SEED]

``RUN_DIR`` is a ``standard`` run directory of ``mlmclm train`` (it holds ``model.safetensors`` and
``metrics.json``, whose ``seed`` is used unless ``--seed`` is given).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mlmclm.model.serialization import load_model, model_from_config

TABLE = "mechanism.position_embeddings.weight"


def lag_cosines(table: torch.Tensor, lags: tuple[int, ...] = (1, 5, 50)) -> dict[int, float]:
    """Mean cosine similarity of row i and row i + lag, rows centred on the table's mean row."""
    rows = torch.nn.functional.normalize(table - table.mean(0), dim=1)
    similarity = rows @ rows.T
    return {lag: similarity.diagonal(lag).mean().item() for lag in lags if lag < len(table)}


def describe(name: str, table: torch.Tensor, start: torch.Tensor) -> str:
    cosines = ", ".join(f"lag {lag} {value:+.3f}" for lag, value in lag_cosines(table).items())
    rms, moved = table.pow(2).mean().sqrt().item(), (table - start).pow(2).mean().sqrt().item()
    return f"{name}: rms {rms:.4f}, rms change from init {moved:.4f}, neighbour cosine {cosines}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: from metrics.json)")
    args = parser.parse_args()
    seed = args.seed
    if seed is None:
        seed = int(json.loads((args.run_dir / "metrics.json").read_text(encoding="utf-8"))["seed"])
    trained = load_model(args.run_dir)
    if TABLE not in trained.state_dict():
        raise SystemExit(f"{args.run_dir} is not a 'standard' run: it has no learned position table")
    torch.manual_seed(seed)  # the trainer seeds the global RNG and then builds the model (train/trainer.py)
    initial = model_from_config(trained.config, args.run_dir).state_dict()[TABLE]
    table = trained.state_dict()[TABLE]
    print(describe("trained", table, initial))
    print(describe("initial", initial, initial))


if __name__ == "__main__":
    main()
