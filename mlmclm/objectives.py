"""The training objectives an arm can use, one record each: what it trains on and how it is evaluated.

Two single objectives and two hybrids of them, all on the same model, data, step budget and statistics:

* ``mlm``: masked language modelling with bidirectional attention (Devlin et al. 2019).
* ``clm``: next-token prediction with causal attention (Radford et al. 2018).
* ``clm_mlm``: a CLM phase, then an MLM phase, over the one step budget; ``training.hybrid_clm_fraction`` of
  the optimizer steps are CLM. The optimizer and the learning-rate schedule run on across the switch
  (Gisserot-Boukhlef et al. 2025, "Should We Still Pretrain Encoders with Masked Language Modeling?",
  arXiv:2507.00994, who compare 25/75, 50/50 and 75/25 splits).
* ``mntp``: masked next-token prediction (GPT-BERT; Charpentier & Samuel 2024, "GPT or BERT: why not both?",
  arXiv:2410.24159, Fig. 1): one model on a mix of causal and masked micro-batches, a share
  ``training.mntp_causal_fraction`` of them causal (the paper's 1:15 causal:masked is 1/16). Both kinds predict
  the next token: in a masked batch the output at position i-1 predicts token i when token i is masked.

This module imports nothing from the package, so the config, the model, the data and the analysis can all
read the one list (``OBJECTIVES``) and each objective's evaluation task from here.
"""

from __future__ import annotations

from dataclasses import dataclass

MASKED, CAUSAL, MASKED_SHIFTED = "masked", "causal", "masked_shifted"


@dataclass(frozen=True)
class Objective:
    """One objective. ``evaluation``: the task its val/test loss and accuracy score, one of

    ``masked`` (masked tokens, bidirectional mask, fixed ``data.eval_seed`` masks, output at the masked
    position), ``causal`` (every next token, causal mask) or ``masked_shifted`` (the same masks and targets as
    ``masked``, read out one position earlier, as GPT-BERT's masked mode). Two objectives with the same
    ``evaluation`` are scored on identical batches, so their losses compare like for like.
    """

    name: str
    summary: str
    evaluation: str
    hybrid: bool

    @property
    def default_causal(self) -> bool:
        """The attention mask the model uses when a batch does not say (probes, export): causal only for CLM."""
        return self.evaluation == CAUSAL


OBJECTIVE_DEFINITIONS: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective("mlm", "masked language modelling (bidirectional)", MASKED, hybrid=False),
        Objective("clm", "causal (next-token) language modelling", CAUSAL, hybrid=False),
        Objective(
            "clm_mlm", "a CLM phase then an MLM phase (training.hybrid_clm_fraction of the steps CLM)",
            MASKED, hybrid=True,
        ),
        Objective(
            "mntp", "masked next-token prediction, GPT-BERT (training.mntp_causal_fraction of the batches causal)",
            MASKED_SHIFTED, hybrid=True,
        ),
    )
}
OBJECTIVES: tuple[str, ...] = tuple(OBJECTIVE_DEFINITIONS)


def same_evaluation(first: str, second: str) -> bool:
    """Whether two objectives' val/test losses score the same task on the same batches (like for like)."""
    a, b = OBJECTIVE_DEFINITIONS.get(first), OBJECTIVE_DEFINITIONS.get(second)
    return a is not None and b is not None and a.evaluation == b.evaluation


def uses_masking(objectives: list[str] | tuple[str, ...]) -> bool:
    """Whether any of these objectives trains on masked batches (so the MLM data settings take effect)."""
    return any(OBJECTIVE_DEFINITIONS[name].evaluation != CAUSAL for name in objectives if name in OBJECTIVE_DEFINITIONS)
