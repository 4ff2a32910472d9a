"""The tiny BERT: random weights and a WordPiece vocabulary trained on the training texts (offline runs, tests)."""

from __future__ import annotations

from pathlib import Path

from train.models.transformer.config import TinyBertConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_bert(texts: list[str], config: TinyBertConfig, folder: Path, seed: int) -> Path:
    """A small BERT with random weights and a WordPiece vocabulary trained on `texts`, saved to `folder`."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.normalizers import BertNormalizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    # No lowercasing or accent stripping: NFD-stripping would take hamza and madda off Arabic letters.
    options = {"clean_text": True, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}
    wordpiece = BertWordPieceTokenizer(**options)
    # The trainer numbers the "##x" continuation pieces in hash-map order, which changes from one training to the
    # next, and its merges break ties by those numbers: the same texts gave a different vocabulary, and so a different
    # model, every time (huggingface/tokenizers#1794). Numbered up front, in sorted order, they make it reproducible.
    normalizer = BertNormalizer(**options)
    alphabet = sorted(set().union(*(normalizer.normalize_str(text) for text in texts)) - set(" \t\n\r"))
    wordpiece.train_from_iterator(texts, vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                                  special_tokens=SPECIAL_TOKENS + [f"##{char}" for char in alphabet],
                                  show_progress=False)
    tokenizer = BertTokenizerFast(vocab=wordpiece.get_vocab(), do_lower_case=False, strip_accents=False,
                                  tokenize_chinese_chars=False)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=config.hidden_size,
                                num_hidden_layers=config.layers, num_attention_heads=config.heads,
                                intermediate_size=config.intermediate_size, max_position_embeddings=512))
    bert.save_pretrained(folder, safe_serialization=True)
    return folder


def unknown_rate(tokenizer, texts: list[str]) -> float:
    """Share of tokens that are [UNK]: a vocabulary that cannot spell Arabic words fails silently otherwise."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    total = sum(len(row) for row in ids)
    unknown = sum(row.count(tokenizer.unk_token_id) for row in ids)
    return unknown / total if total else 0.0
