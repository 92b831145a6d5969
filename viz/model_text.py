"""Sentences the page explanations say about the loaded model, each built from its ModelFacts, so that
a GPT-2 or Pythia page never repeats what only holds for the default model (rotary, RMSNorm, ...).
Plain markdown strings; pages put them into their explanations."""
from __future__ import annotations

from model.core.description import ModelFacts

_NORM_NAMES = {"rms": "RMSNorm", "layer": "LayerNorm", "none": "no norm"}
_ACTIVATIONS = {  # config names -> what a reader knows them as
    "silu": "SiLU", "swish": "SiLU", "gelu": "GELU", "gelu_new": "GELU (tanh approximation)",
    "gelu_pytorch_tanh": "GELU (tanh approximation)", "gelu_fast": "GELU (fast approximation)",
    "relu": "ReLU", "relu2": "squared ReLU", "tanh": "tanh",
}


def placement(block_devices: tuple[str, ...]) -> str:
    """Where the blocks live, runs of neighbours together: "Blocks 0–11 on cuda:0, 12–23 on cpu, 24–29 on disk"."""
    runs: list[list] = []  # [first, last, device]
    for i, device in enumerate(block_devices):
        if runs and runs[-1][2] == device:
            runs[-1][1] = i
        else:
            runs.append([i, i, device])
    parts = [f"{a}–{b} on {d}" if a != b else f"{a} on {d}" for a, b, d in runs]
    return ("Blocks " if len(block_devices) != 1 else "Block ") + ", ".join(parts)


def head_width(f: ModelFacts) -> str:
    """The length of one head's query, key and value vectors."""
    return f"{f.shape.head_dim} numbers in this model"


def kv_sharing(f: ModelFacts) -> str:
    """Whether query heads share keys and values, in one sentence."""
    if f.shape.n_kv_heads == 1 and f.shape.n_heads > 1:
        return (f"In this model all {f.shape.n_heads} query heads of a block share one set of keys and values "
                "(multi-query attention): their patterns differ only through their queries.")
    if f.shape.grouped_query:
        return (f"In this model the {f.shape.n_heads} query heads of a block share {f.shape.n_kv_heads} sets of keys and "
                f"values, {f.shape.group_size} query heads per set (grouped-query attention): heads of one set "
                "differ only through their queries.")
    return f"In this model each of the {f.shape.n_heads} heads of a block has its own queries, keys and values."


def heads_help(f: ModelFacts) -> str:
    """The start page's 'Heads per block' tooltip."""
    if f.shape.grouped_query:
        return (f"{f.shape.n_heads} query heads share {f.shape.n_kv_heads} key/value heads "
                f"({f.shape.group_size} queries per key/value).")
    return f"{f.shape.n_heads} heads, each with its own keys and values."


def block_help(f: ModelFacts) -> str:
    """The start page's 'Blocks' tooltip: the block's shape and its MLP."""
    order = ("attention and an MLP side by side, both reading the same input; their outputs are added to "
             "the stream together" if f.parallel_blocks else "attention, then an MLP, each added to the stream")
    return f"Each block: {order}. {mlp_shape(f)}"


def mlp_shape(f: ModelFacts) -> str:
    """The MLP's widths and non-linearity."""
    act = _ACTIVATIONS.get(f.activation.lower(), f.activation) if f.activation else "a non-linearity"
    gate = f"{act}-gated (a second projection multiplies the {act} output)" if f.gated_mlp else act
    return f"The MLP widens each vector from {f.shape.d_model:,} to {f.d_mlp:,} numbers, applies {gate}, and narrows it back."


def positions_in_attention(f: ModelFacts) -> str:
    """How the queries and keys shown relate to the model's position signal."""
    return {
        "rotary": "The queries and keys here are exactly those the model used, after its rotary position "
                  "embedding (each query and key is turned by an angle that depends on its position).",
        "learned": "The queries and keys here are exactly those the model used. This model has no position "
                   "step inside attention: it knows positions from a learned position vector added to each "
                   "token's embedding before block 0.",
        "alibi": "The queries and keys here are exactly those the model used. This model puts no position "
                 "into queries or keys: it adds a penalty that grows with the distance between query and "
                 "key to every score (ALiBi).",
        "none": "The queries and keys here are exactly those the model used. This model has no position "
                "signal besides the causal mask.",
    }[f.positions]


def embedding_start(f: ModelFacts) -> str:
    """What the stream holds before block 0, and whether the same word starts at the same point."""
    if f.positions == "learned":
        return ("At the embedding a word's vector is its row of the embedding table **plus a learned vector "
                "for its position**, so the same word at different positions starts at nearby but different "
                "points (cosine below 1).")
    return ("At the embedding a word's vector comes straight from the embedding table (this model adds no "
            "position vector to it), so the same word in any sentence starts at exactly the same point "
            "(cosine 1).")


def embedding_bullet(f: ModelFacts) -> str:
    """The Embeddings page's line about depth 0."""
    if f.positions == "learned":
        return ("- **The embedding** (before block 0): the token's row of the embedding table plus a learned "
                "vector for its position, so the same word at two positions starts at two nearby points.")
    return ("- **The embedding** (before block 0): a fixed vector per token, the same whatever the context "
            "(this model adds no position vector here).")


def repeated_word_start(f: ModelFacts) -> str:
    """Where the two copies of a repeated word start (same point unless positions are added)."""
    if f.positions == "learned":
        return "both copies start close together (only their position vectors differ) and drift apart as context is mixed in."
    return "both copies start at the same point and drift apart as context is mixed in."


def final_norm(f: ModelFacts) -> str:
    """What the final norm divides by, in words."""
    return {
        "rms": "its root mean square: RMSNorm, which removes no mean",
        "layer": "its standard deviation, after subtracting its mean: LayerNorm",
        "none": "nothing: this model has no final norm",
    }[f.norm]


def norm_step(f: ModelFacts) -> str:
    """The attribution page's sentence about the one non-linear step."""
    if f.norm == "none":
        return ("This model has no final norm, so the stream goes straight into the unembedding and the logit "
                "is exactly linear in it.")
    return (f"The only non-linear step is the final norm, which divides the whole vector by its size (here "
            f"{final_norm(f)}).")


def readout(f: ModelFacts) -> str:
    """How the last vector becomes scores: norm, unembedding, and how many."""
    norm = "" if f.norm == "none" else f"normalized (the final {_NORM_NAMES[f.norm]}) and "
    tied = (" (this model uses its embedding matrix again for this: tied embeddings)" if f.tied_embeddings
            else " (a matrix of its own in this model, separate from the embedding table)")
    return (f"the vector at each position is {norm}multiplied by the *unembedding* matrix{tied}: one score per "
            f"vocabulary entry, the **logits** ({f.shape.vocab_size:,} of them for this model)")


def final_step(f: ModelFacts) -> str:
    """The logit lens's last step, as this model takes it."""
    if f.norm == "none":
        return "it multiplies the vector by the **unembedding** matrix (this model has no final norm)."
    return (f"it normalises the vector (the **final norm**: {_NORM_NAMES[f.norm]}) and multiplies it by the "
            "**unembedding** matrix.")


def echo_note(f: ModelFacts) -> str:
    """Why the logit lens's top row may echo the input token."""
    if f.tied_embeddings:
        return ("it often just echoes the token itself, because this model uses the same matrix to read "
                "tokens in and to score them out (tied embeddings).")
    return ("this model scores tokens with a matrix of its own (untied embeddings), so an echo of the token "
            "itself is not built in; when it appears, the model learned it.")
