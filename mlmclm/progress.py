"""Progress for long work: tqdm bars on a terminal, plain periodic log lines elsewhere (CI logs), or nothing.

A grid bar counts runs (done/total with ETA); a run bar shows step, loss and tokens/s.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

if TYPE_CHECKING:  # grid imports this module; the record type is only named here
    from mlmclm.grid.records import RunRecord

log = logging.getLogger("mlmclm")


class GridProgress:
    def __init__(self, total_runs: int, already_done: int, quiet: bool = False) -> None:
        self.interactive = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.total = total_runs
        self.done = already_done
        self.grid_bar = (
            tqdm(total=total_runs, initial=already_done, desc="runs", unit="run", position=0, dynamic_ncols=True)
            if self.interactive
            else None
        )

    def run_callback(self, spec, total_steps: int):
        """A per-step callback for one run: a bar on a terminal, a log line every quarter otherwise."""
        if self.quiet:
            return None
        if self.interactive:
            bar = tqdm(total=total_steps, desc=spec.run_id, unit="step", position=1, leave=False, dynamic_ncols=True)

            def update_bar(step: int, total: int, loss: float, tokens_per_s: float) -> None:
                bar.n = step
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
                bar.refresh()
                if step >= total:
                    bar.close()

            return update_bar
        marks = {max(1, round(total_steps * q)) for q in (0.25, 0.5, 0.75)}

        def update_log(step: int, total: int, loss: float, tokens_per_s: float) -> None:
            if step in marks:
                log.info("  %s step %d/%d loss %.4f %.0f tokens/s", spec.run_id, step, total, loss, tokens_per_s)

        return update_log

    def run_finished(self, record: RunRecord) -> None:
        self.done += 1
        status = record.status
        detail = f"val_loss {record.metrics['val_loss']:.4f}" if record.completed else record.error or ""
        line = f"[{self.done}/{self.total}] {record.run_id}: {status} {detail}"
        if self.grid_bar is not None:
            self.grid_bar.update(1)
            self.grid_bar.write(line)
        elif not self.quiet:
            log.info(line)

    def close(self) -> None:
        if self.grid_bar is not None:
            self.grid_bar.close()
