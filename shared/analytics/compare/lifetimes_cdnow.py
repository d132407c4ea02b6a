"""The `lifetimes` side of the lifetime value comparison (docs/ANALYTICS.md, "Lifetime value").

Fits BG/NBD and Gamma-Gamma with the `lifetimes` package (PyPI 0.11.3) on a CDNOW file in the
same calibration and holdout split as `knowedge clv`, and prints the parameters, the holdout
totals and summary statistics as JSON; with --summary FILE it also writes the per-customer summary
(customer, x, t_x, T, m, holdout x) as CSV, to compare with `knowedge clv --summary`.

Run it from a virtual environment outside the repository:
    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes pandas
    /tmp/lt/bin/python shared/analytics/compare/lifetimes_cdnow.py ../shared/data/cdnow/CDNOW_master.txt
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import calibration_and_holdout_data


def read_cdnow(path):
    """CDNOW_master.txt (customer, date, cds, dollars, with a header line) or CDNOW_sample.txt
    (master customer, sample customer, date, cds, dollars, no header)."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].isdigit():
                continue
            if len(parts) == 5:
                parts = [parts[0]] + parts[2:]
            rows.append((parts[0], parts[1], float(parts[3])))
    return pd.DataFrame(rows, columns=["customer", "date", "dollars"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cdnow")
    ap.add_argument("--calibration-end", default="1997-09-30")
    ap.add_argument("--holdout-end", default="1998-06-30")
    ap.add_argument("--freq", default="D", help="D with --multiplier 7: days, in weeks (Fader, Hardie and Lee)")
    ap.add_argument("--multiplier", type=int, default=7)
    ap.add_argument("--summary", help="write the per-customer summary here (CSV)")
    args = ap.parse_args()

    tx = read_cdnow(args.cdnow)
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    started = time.perf_counter()
    s = calibration_and_holdout_data(
        tx,
        "customer",
        "date",
        calibration_period_end=args.calibration_end,
        observation_period_end=args.holdout_end,
        freq=args.freq,
        freq_multiplier=args.multiplier,
        monetary_value_col="dollars",
    )
    summary_s = time.perf_counter() - started
    if args.summary:
        out = s[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout"]].copy()
        out.index.name = "customer"
        out.to_csv(args.summary, float_format="%.10g")

    started = time.perf_counter()
    bg = BetaGeoFitter(penalizer_coef=0.0)
    bg.fit(s["frequency_cal"], s["recency_cal"], s["T_cal"])
    bg_s = time.perf_counter() - started
    duration = float(s["duration_holdout"].iloc[0])
    predicted = bg.conditional_expected_number_of_purchases_up_to_time(
        duration, s["frequency_cal"], s["recency_cal"], s["T_cal"]
    )
    actual = s["frequency_holdout"]
    alive = bg.conditional_probability_alive(s["frequency_cal"], s["recency_cal"], s["T_cal"])

    repeat = s[(s["frequency_cal"] > 0) & (s["monetary_value_cal"] > 0)]
    started = time.perf_counter()
    gg = GammaGammaFitter(penalizer_coef=0.0)
    gg.fit(repeat["frequency_cal"], repeat["monetary_value_cal"])
    gg_s = time.perf_counter() - started
    spend = gg.conditional_expected_average_profit(s["frequency_cal"], s["monetary_value_cal"])

    print(
        json.dumps(
            {
                "customers": int(len(s)),
                "repeat_customers": int(len(repeat)),
                "sum_x": float(s["frequency_cal"].sum()),
                "sum_t_x": float(s["recency_cal"].sum()),
                "sum_T": float(s["T_cal"].sum()),
                "sum_m": float(s["monetary_value_cal"].sum()),
                "duration_holdout": duration,
                "bgnbd": {k: float(v) for k, v in bg.params_.items()},
                "gammagamma": {k: float(v) for k, v in gg.params_.items()},
                "holdout": {
                    "predicted_total": float(predicted.sum()),
                    "actual_total": float(actual.sum()),
                    "mae": float(np.abs(predicted - actual).mean()),
                },
                "mean_p_alive": float(np.mean(alive)),
                "mean_expected_spend": float(spend.mean()),
                "seconds": {"summary": summary_s, "bgnbd": bg_s, "gammagamma": gg_s},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
