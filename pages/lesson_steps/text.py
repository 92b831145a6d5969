"""The lesson's words: one short text per step, the task it sets, and the full page to go deeper.
Our own text, in the order of the lesson the learners watched (tokens to sampling). No streamlit here:
pages/lesson.py lays it out, pages/lesson_*.py draw each step's live figure and check its task."""
from __future__ import annotations

from dataclasses import dataclass

from model.analyses.lesson_checks import HEAD_THRESHOLD, STEER_FACTOR, TIE_TOLERANCE


@dataclass(frozen=True)
class Step:
    """One step of the lesson."""

    title: str
    text: str  # markdown, LaTeX between $...$
    task: str  # the "try this" line (markdown)
    deeper: str  # the page that shows this part in full
    deeper_title: str


STEPS: tuple[Step, ...] = (
    Step(
        "Text becomes tokens",
        "The model never reads letters. A **tokenizer** cuts your text into pieces from a fixed list "
        "(the *vocabulary*): common words are one piece, rare words are split into several, spaces and "
        "punctuation are pieces too. Each piece has a number, its **token id**. Everything that follows "
        "works on these pieces, one position each.\n\n"
        "Below is the prompt from the sidebar as this model cuts it. A dot (·) marks a space that "
        "belongs to the token.",
        "Find a word that this model cuts into **at least 3 tokens**.",
        "pages/overview.py", "Start here",
    ),
    Step(
        "The embedding matrix",
        "Each token id picks one row of the **embedding matrix** $W_E$: a list of numbers (a vector) "
        "that the model learned for that token. With a vocabulary of $V$ tokens and vectors of length "
        "$d$, the matrix has $V \\times d$ numbers:\n\n"
        "$$x_i = W_E[\\,\\text{id}_i\\,] \\in \\mathbb{R}^{d}$$\n\n"
        "The embedding is only one of the model's matrices. Every block adds its own: the attention's "
        "query, key, value and output matrices and the MLP's. The chart counts every number this model "
        "learned, by the kind of matrix it sits in; the embedding's own count is left for you.",
        "How many numbers does the **embedding matrix** hold? Work it out from its shape.",
        "pages/overview.py", "Start here (weights at a glance)",
    ),
    Step(
        "Directions carry meaning",
        "Vectors that point the same way belong to tokens the model treats alike. The **cosine** of two "
        "vectors measures that: 1 for the same direction, 0 for unrelated ones.\n\n"
        "Some *differences* between vectors mean something too. If the step from *man* to *woman* "
        "points the same way as the step from *king* to *queen*, then\n\n"
        "$$\\vec{king} - \\vec{man} + \\vec{woman} \\approx \\vec{queen}.$$\n\n"
        "The chart computes such a sum on this model's own embedding matrix and lists the tokens whose "
        "vectors point most nearly the same way (the words you typed are left out).",
        "Write an analogy **of your own** whose expected word comes out first (rank 1).",
        "pages/meaning.py", "Meaning",
    ),
    Step(
        "A query meets the keys: scores",
        "Attention lets a token gather information from earlier tokens. In one **head**, every token "
        "makes a **query** $q_i = W_Q x_i$ (what am I looking for?) and a **key** $k_j = W_K x_j$ (what "
        "do I offer?). The **score** of query $i$ on key $j$ is their dot product divided by $\\sqrt{d_k}$, "
        "where $d_k$ is the size of the query and key vectors (how many numbers each holds):\n\n"
        "$$s_{ij} = \\frac{q_i \\cdot k_j}{\\sqrt{d_k}}$$\n\n"
        "A large score means: this key answers this query well. The map shows every score of the chosen "
        "head, the real queries and keys the model used (rows: the reading token, columns: the read one).",
        "For the **last token**, which key gets the **highest score**? Read the last row (on a long prompt, "
        f"point at a cell for its score); a key within {TIE_TOLERANCE} of the top counts too.",
        "pages/head_pipeline.py", "Attention step by step",
    ),
    Step(
        "The causal mask",
        "A language model is trained to predict the *next* token, so no token may peek at the ones after "
        "it. Before the softmax every score of a later key is replaced by $-\\infty$:\n\n"
        "$$s_{ij} = -\\infty \\quad \\text{for } j > i$$\n\n"
        "Everything above the diagonal is hidden (grey). The first token can only read itself; the last "
        "can read the whole prompt.",
        "How many scores does the mask **hide** for your prompt?",
        "pages/head_pipeline.py", "Attention step by step",
    ),
    Step(
        "Softmax turns scores into a pattern",
        "Each row of scores goes through a **softmax**: exponentiate, then divide by the row's sum. The "
        "result is positive weights that add up to 1, and $e^{-\\infty} = 0$ for the hidden keys:\n\n"
        "$$a_{ij} = \\frac{e^{s_{ij}}}{\\sum_{j' \\le i} e^{s_{ij'}}}$$\n\n"
        "The grid of weights is the head's **attention pattern**. Heads learn habits: some read the "
        "previous token, many park their weight on the first token when nothing else fits (the "
        "*attention sink*), some look for an earlier copy of the current word. (A few models, gpt-oss "
        "among them, learn a sink of their own: one extra score per head that belongs to no token. Their "
        "rows then add up to less than 1, and a note under the figure says how much the sink took.)",
        "Find a head that gives the **previous token** at least half of each token's attention, on average.",
        "pages/attention.py", "Attention",
    ),
    Step(
        "Values move information",
        "Weights alone move nothing. Each token also makes a **value** $v_j = W_V x_j$: what it hands "
        "over when it is read. The head's output at token $i$ is the weighted sum of the values, which "
        "the output matrix $W_O$ adds back to the token's vector:\n\n"
        "$$x_i \\leftarrow x_i + W_O \\sum_{j \\le i} a_{ij}\\, v_j$$\n\n"
        "A key with a large weight but a short value passes little: the map scales each weight by the "
        "length of that key's value. This is how *mole* comes to mean the animal after *garden* and the "
        "spy after *agency*: the curves below show the same word's vectors drifting apart with depth.",
        "Find a head where the key with the **most weight** is not the key that **moves the most** "
        "(weight × |value|) for the last token.",
        "pages/meaning.py", "Meaning (one word in several contexts)",
    ),
    Step(
        "Many heads, many layers",
        "One block runs several heads side by side, each with its own $W_Q, W_K, W_V$: each can look "
        "for something different. Their outputs are joined and added to the stream together. Then the "
        "next block starts from the updated vectors, so later heads can use what earlier heads found.\n\n"
        "Some behaviours need two heads in two blocks. An **induction head** finds the earlier copy of "
        "the current token and reads what came right after it, so a repeated text is continued the same "
        "way (the badge **I** in the grid).\n\n"
        "The grid tests this on a random text typed twice. The **induction score** is the share of "
        "attention on the token that followed the earlier copy, corrected for chance: 0 is what spreading "
        "attention evenly gives, 1 is all of it, below 0 means the head avoids that token.",
        f"Pick an **induction head**: one whose induction score is at least {HEAD_THRESHOLD}.",
        "pages/attention.py", "Attention (every head)",
    ),
    Step(
        "The MLP",
        "After attention, each block runs a **multi-layer perceptron** on every token on its own: the "
        "vector is multiplied by a wide matrix, passed through a non-linearity, multiplied back down, and "
        "added to the stream. Llama-style models (the default one included) gate the up-projection:\n\n"
        "$$\\text{MLP}(x) = W_{down}\\,\\big(\\text{SiLU}(W_{gate}\\,x) \\odot W_{up}\\,x\\big)$$\n\n"
        "MLPs hold most of the weights and much of what the model *knows*. The chart splits the "
        "top token's logit into what each block's attention and MLP wrote directly (hatched bars: MLP).",
        "Which block's **MLP** pushes the top token up **the most**?",
        "pages/mlp.py", "MLP (inside one block's MLP, neuron by neuron)",
    ),
    Step(
        "The unembedding and the logits",
        "After the last block, the vector of the last token is normalised and compared with a row of "
        "the **unembedding** matrix $W_U$ for every token of the vocabulary. Each comparison gives a "
        "score, a **logit**:\n\n"
        "$$\\text{logits} = W_U\\, \\text{norm}(x_{\\text{last}}) \\in \\mathbb{R}^{V}$$\n\n"
        "Some models reuse the embedding matrix as $W_U$ (*tied* weights): the output is then read in "
        "the same space the input came from. The biggest logit is the model's best guess.\n\n"
        "Every position makes such a guess for the token after it, so the prompt itself can be scored: a "
        "token the model gave a low probability is a **surprise**, measured in bits ($-\\log_2 p$).",
        "Edit the prompt in the sidebar until the most likely next token is **Paris**, "
        "with a prompt of your own.",
        "pages/logit_lens.py", "Logit lens",
    ),
    Step(
        "Softmax and temperature",
        "A softmax turns the logits into probabilities. Before it, the logits are divided by the "
        "**temperature** $T$:\n\n"
        "$$p_t = \\frac{e^{z_t / T}}{\\sum_{t'} e^{z_{t'} / T}}$$\n\n"
        "A low $T$ stretches the gaps, so the favourite takes nearly everything; a high $T$ squeezes "
        "them, so unlikely tokens get a real chance. $T = 0$ always picks the favourite.",
        "Raise the temperature until the top token falls **below 50%**.",
        "pages/next_token.py", "Next token",
    ),
    Step(
        "Sampling and generation",
        "To write text, the model draws one token from these probabilities, appends it to the text, "
        "and runs again: one token at a time, with no plan beyond the next one. A random **seed** fixes "
        "the draw, so the same seed always gives the same token.\n\n"
        "*Greedy* decoding always takes the favourite; *sampling* sometimes takes a less likely token, "
        "which makes the text more varied (and at high temperature, less sensible).",
        "Find a **seed** whose draw is **not** the most likely token.",
        "pages/generate.py", "Generate",
    ),
    Step(
        "Steering: a direction is a meaning",
        "Step 3 found meaning in directions between word vectors. The same holds inside the model: take "
        "the stream of *I love talking about weddings* and subtract the stream of *I love talking about*, "
        "both at their last token. What is left is, roughly, *weddings* as the model holds it at that "
        "depth.\n\n"
        "Now **add** that difference to the stream of a prompt that has nothing to do with weddings, "
        "times a **coefficient**. No weight changes and no word of the prompt changes, yet the next "
        "token moves toward the topic: the direction alone carries the meaning. This is *activation "
        "steering* (ActAdd, Turner et al. 2023).",
        "Push the model toward your topic: raise the coefficient until the topic's own token is "
        f"**at least {STEER_FACTOR:g}× as likely** after your prompt as without steering.",
        "pages/steering.py", "Steering",
    ),
)
