"""PyPOTS SAITS on exactly dynmask's PM10 windows, split and held-out values; MAE / RMSE / MRE and training time.

Runs in its own environment (the project never depends on pypots):

    python3 -m venv /tmp/pypots-venv
    /tmp/pypots-venv/bin/pip install torch==2.13.0 pypots tokenizers safetensors pandas
    PYTHONPATH=src /tmp/pypots-venv/bin/python benchmarks/saits_pm10.py   # results/imputation-pm10/saits.json
    # the same training budgets as dynmask's tuned imputer (150, or 300, epochs with patience 25):
    PYTHONPATH=src /tmp/pypots-venv/bin/python benchmarks/saits_pm10.py --epochs 150 --patience 25 \
        --output results/imputation-pm10/saits-150-epochs.json
    PYTHONPATH=src /tmp/pypots-venv/bin/python benchmarks/saits_pm10.py --epochs 300 --patience 25 \
        --output results/imputation-pm10/saits-300-epochs.json

SAITS hyper-parameters are the published ones (Du et al., 2023, Air-Quality): 2 layers, d_model 256,
4 heads, d_k = d_v = 64, d_ffn 128, dropout 0.1, diagonal attention mask, ORT and MIT weights 1,
Adam lr 1e-3, batch 32; early stopping on the validation held-out values (patience 10).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dynmask.tasks.impute.calibration import imputation_metrics  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pypots_pm10 import pm10_data, pypots_inputs  # noqa: E402


def main(seeds=(0, 1, 2), epochs: int = 100, patience: int = 10, output: Path = None) -> None:
    from pypots.imputation import SAITS
    from pypots.optim import Adam
    from pypots.utils.random import set_random_seed

    data = pm10_data()[1]  # the committed held-out mask, checked
    scaler = data["scaler"]
    train, valid_in, valid_truth, test_in = pypots_inputs(data)
    out = ROOT / "results" / "imputation-pm10"
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        set_random_seed(seed)
        model = SAITS(
            n_steps=30,
            n_features=train.shape[2],
            n_layers=2,
            d_model=256,
            n_heads=4,
            d_k=64,
            d_v=64,
            d_ffn=128,
            dropout=0.1,
            attn_dropout=0.1,
            batch_size=32,
            epochs=epochs,
            patience=patience,
            optimizer=Adam(lr=1e-3),
            device="cpu",
            verbose=False,
        )
        t0 = time.perf_counter()
        model.fit({"X": train}, {"X": valid_in, "X_ori": valid_truth})
        seconds = time.perf_counter() - t0
        imputed = model.predict({"X": test_in})["imputation"]
        metrics = imputation_metrics(scaler.inverse(imputed), data["test"], data["test_holdout"])
        runs.append(
            {"seed": seed, **metrics, "train_seconds": seconds, "best_epoch": int(getattr(model, "best_epoch", -1))}
        )
        print(runs[-1], flush=True)
    output = output or out / "saits.json"
    output.write_text(
        json.dumps({"model": "PyPOTS SAITS", "epochs": epochs, "patience": patience, "runs": runs}, indent=2)
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="most epochs (default: 100)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs (default: 10)")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file (default: results/imputation-pm10/saits.json)"
    )
    args = parser.parse_args()
    main(epochs=args.epochs, patience=args.patience, output=args.output)
