"""Tokenizers: Crab's added tokens on top of the LLaMA-2 tokenizer, and crab-tiny's own small tokenizer.

Crab (GeWu-Lab/Crab `models/unified_arch.py`, `initialize_MM_tokenizer`) adds, in this order,
11 special tokens `<image> <image_start> <image_end> <video> <video_start> <video_end> <audio>
<audio_start> <audio_end> <mask_start> <mask_end>` and then 6 ordinary added tokens `<mask_0>` ..
`<mask_5>` (2 image scales x 3 tokens), and resizes the embeddings: LLaMA-2's 32000 ids become 32017.
The order fixes the ids, which the official embedding rows are stored under.

crab-tiny needs a tokenizer that exists without a download: `build_tiny_tokenizer` trains a byte-level
BPE (the `tokenizers` library transformers is built on) on a fixed corpus of the benchmarks' label
vocabularies and answer/tag phrasing. Byte-level means any prompt encodes (no unknown tokens); the
corpus only decides which strings get short codes. Training is deterministic for a fixed corpus.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from avbench import vocab
from avbench.errors import AVBenchError

#: Placeholders replaced by media features, in the order Crab adds them.
MEDIA_TOKENS: tuple[str, ...] = (
    "<image>", "<image_start>", "<image_end>",
    "<video>", "<video_start>", "<video_end>",
    "<audio>", "<audio_start>", "<audio_end>",
    "<mask_start>", "<mask_end>",
)
PLACEHOLDERS: tuple[str, ...] = ("<image>", "<video>", "<audio>")
N_MASK_TOKENS = 6
MASK_TOKENS: tuple[str, ...] = tuple(f"<mask_{i}>" for i in range(N_MASK_TOKENS))
ADDED_TOKENS: tuple[str, ...] = MEDIA_TOKENS + MASK_TOKENS

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
TINY_VOCAB_SIZE = 2048


def add_crab_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    """Add Crab's 17 tokens (special media tokens first, then the mask tokens), as Crab does.

    A tokenizer that already holds them (a saved crab checkpoint) is left alone; one that holds only
    some, or holds them under other ids than right after the base vocabulary, is an error.
    """
    vocab_map = tokenizer.get_vocab()
    present = [t for t in ADDED_TOKENS if t in vocab_map]
    if len(present) == len(ADDED_TOKENS):
        return
    if present:
        raise AVBenchError(f"tokenizer holds only some of Crab's added tokens ({present}); expected all or none")
    tokenizer.add_tokens(list(MEDIA_TOKENS), special_tokens=True)
    tokenizer.add_tokens(list(MASK_TOKENS), special_tokens=False)


def crab_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Ids of the added tokens, checked to be consecutive in Crab's order."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ADDED_TOKENS}
    first = ids[ADDED_TOKENS[0]]
    if any(ids[t] != first + i for i, t in enumerate(ADDED_TOKENS)):
        raise AVBenchError(f"Crab's added tokens are not consecutive in Crab's order: {ids}")
    return ids


def _tiny_corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: label vocabularies, answers, tags, numbers, phrasing."""
    lines: list[str] = []
    for names in (vocab.AVE_EVENTS, vocab.LLP_CLASSES, vocab.AVQA_ANSWERS, vocab.AVSS_CLASSES, vocab.AVQA_INSTRUMENTS):
        lines.extend(names)
        lines.append(", ".join(names))
        lines.append("; ".join(names))
    lines.extend(n.replace("_", " ") for n in vocab.LLP_CLASSES)
    lines.extend(str(i) for i in range(0, 256))
    lines.extend(f"({i} {j})" for i in range(11) for j in range(i, 11))
    lines.extend(f"<range>{i},{j}</range>" for i in range(11) for j in range(i, 11))
    lines.extend(f"<obj>({i},{j})({i + 50},{j + 50})</obj>" for i in range(0, 224, 16) for j in range(0, 224, 16))
    ordinals = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
    mask = "<mask_start>" + "".join(MASK_TOKENS) + "<mask_end>"
    lines.extend(f"At the {o} second, the mask is {mask}." for o in ordinals)
    phrases = [
        "This is a video:", "This is an audio:", "This is an image:",
        "Please answer this question:", "Please identify the event in the video that is both audible and visible.",
        "Please determine which events can be heard and which can be seen in the video, and when each starts and ends.",
        "Please recognize the category of the object making the sound, and then segment out the object.",
        "Please recognize the category of object that makes the sound and then output its location coordinates.",
        "Please segment out the object referred to by the following expression at each second of the video.",
        "Explain briefly, then give the answer in one or a few words as <answer>...</answer>.",
        "The event is <event>Church bell</event> and the time range is <range>0,10</range>.",
        "<audio>Dog,(0 2),(5 10)</audio> <visual>Dog,(0 10)</visual>",
        "The object making the sound in the video is a dog. The objects making sound are: man, piano.",
        "The answer is <answer>yes</answer>. The answer is <answer>no</answer>.",
        "left right middle yes no zero one two three four five six seven eight nine ten more than ten",
        "So the audible and visible event in the video is",
        "in whole seconds from 0 to 10 (end exclusive); several ranges of one event may follow its name",
        "an empty mask where the object is absent. Expression: the one making the loudest sound",
        "You are a helpful assistant. [INST] <<SYS>> <</SYS>> [/INST]",
    ]
    lines.extend(phrases)
    return lines


def build_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE, with_crab_tokens: bool = True) -> PreTrainedTokenizerFast:
    """crab-tiny's tokenizer: byte-level BPE trained on `_tiny_corpus`, plus Crab's added tokens
    (without them: the "base" tokenizer, as LLaMA-2 ships its own)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, special_tokens=[BOS, EOS, UNK, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=PAD,
        padding_side="left", clean_up_tokenization_spaces=False,
    )
    if with_crab_tokens:
        add_crab_tokens(tokenizer)
    return tokenizer


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """A saved tokenizer (ours, or LLaMA-2's HF files) with Crab's tokens added; pad = EOS if unset (as Crab)."""
    directory = Path(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, padding_side="left")
    except (OSError, ValueError) as exc:
        raise AVBenchError(f"{directory}: cannot load a tokenizer ({exc})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    add_crab_tokens(tokenizer)
    crab_token_ids(tokenizer)
    return tokenizer
