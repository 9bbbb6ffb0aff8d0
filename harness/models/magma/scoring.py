"""Scoring continuations with MAGMA: log p(continuation | prompt) and whether it is greedy.

``score_batch`` runs each (prompt + continuation) in full; ``score_choices`` runs each prompt
once and scores all its continuations from the prompt's key/value cache. Prompts are
left-padded as in generation (``decoding.left_pad``), so a score does not depend on the batch.

This module knows token ids and embeddings only: no tokenizer, no requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.models.magma.decoding import left_pad
from harness.models.magma.modeling import output_cache
from harness.models.magma.sampling import mask_unembedded


@torch.no_grad()
def score_batch(model, prompts: Sequence[torch.Tensor], continuations: Sequence[Sequence[int]]
                ) -> list[tuple[float, bool]]:
    """log p(continuation | prompt) and whether it is the greedy continuation, per pair,
    each pair run in full."""
    vocab_rows = model.config.vocab_rows
    device = prompts[0].device
    full = []
    for prompt, cont in zip(prompts, continuations):
        cont_ids = torch.tensor(list(cont), dtype=torch.long, device=device)
        full.append(torch.cat([prompt, model.embed_tokens(cont_ids).to(prompt.device)]) if len(cont) else prompt)
    embeds, mask, positions = left_pad(full)
    logits = model(embeds, attention_mask=mask, position_ids=positions).logits.float()
    results = []
    for row, cont in enumerate(continuations):
        n = len(cont)
        if n == 0:
            results.append((0.0, True))
            continue
        predicting = mask_unembedded(logits[row, -n - 1:-1], vocab_rows)
        results.append(_score(predicting, cont))
    return results


@torch.no_grad()
def score_choices(model, prompts: Sequence[torch.Tensor], choices: Sequence[Sequence[Sequence[int]]]
                  ) -> list[list[tuple[float, bool]]]:
    """Per prompt, (log p, is greedy) of each of its continuations; each prompt runs once.

    The prompts are run as one left-padded batch; their cache is then repeated once per
    continuation and the continuations (right-padded) are run against it.
    """
    vocab_rows = model.config.vocab_rows
    device = prompts[0].device
    embeds, mask, positions = left_pad(prompts)
    out = model(embeds, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    prompt_logits = mask_unembedded(out.logits[:, -1, :].float(), vocab_rows)
    # (prompt row, place among its continuations, token ids) of every non-empty continuation
    pairs = [(row, place, list(cont)) for row, conts in enumerate(choices)
             for place, cont in enumerate(conts) if len(cont)]
    results: list[list[tuple[float, bool]]] = [[(0.0, True)] * len(conts) for conts in choices]
    if pairs:
        rows = torch.tensor([row for row, _, _ in pairs], device=device)
        cache = output_cache(out)
        cache.reorder_cache(rows)  # one copy of its prompt's cache per continuation
        longest = max(len(ids) for _, _, ids in pairs)
        cont_ids = torch.zeros((len(pairs), longest), dtype=torch.long)
        cont_mask = torch.zeros((len(pairs), longest), dtype=torch.long)
        for index, (_, _, ids) in enumerate(pairs):
            cont_ids[index, :len(ids)] = torch.tensor(ids)
            cont_mask[index, :len(ids)] = 1
        full_mask = torch.cat([mask.index_select(0, rows), cont_mask.to(device)], dim=1)
        cont_positions = positions[:, -1:].index_select(0, rows) + 1 + torch.arange(longest, device=device)
        logits = model(model.embed_tokens(cont_ids.to(device)), attention_mask=full_mask,
                       position_ids=cont_positions, cache=cache, use_cache=True).logits.float()
        for index, (row, place, ids) in enumerate(pairs):
            predicting = torch.cat([prompt_logits[row:row + 1],
                                    mask_unembedded(logits[index, :len(ids) - 1], vocab_rows)])
            results[row][place] = _score(predicting, ids)
    return results


def _score(predicting: torch.Tensor, cont: Sequence[int]) -> tuple[float, bool]:
    """Sum of log p(cont[i]) over the rows of ``predicting`` (n, V), and whether each is the argmax."""
    target = torch.tensor(list(cont), dtype=torch.long, device=predicting.device)
    logp = predicting.log_softmax(-1).gather(-1, target[:, None]).sum()
    greedy = bool((predicting.argmax(-1) == target).all())
    return float(logp), greedy
