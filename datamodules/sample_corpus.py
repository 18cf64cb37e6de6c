"""A small synthetic English / Greek corpus for smoke runs and tests (no download).

Seeded sentences from word lists: English, polytonic-free modern Greek with accents (ά έ ή ί ό ύ ώ,
ϊ ΐ ΰ) and final sigma (ς), and mixed English/Greek lines. Paragraphs are separated by blank
lines, the document format of ``TextCorpusDataModule``'s text files. Not natural text: enough to
exercise tokenizers and training pipelines, not to draw conclusions about language.

    python -m datamodules.sample_corpus data/tiny --kilobytes 40
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ENGLISH = {
    "subject": [
        "the teacher",
        "a young student",
        "my grandmother",
        "the old fisherman",
        "our neighbours",
        "the doctor",
        "a tired traveller",
        "the children",
        "her brother",
        "the city council",
    ],
    "verb": ["reads", "writes", "remembers", "carries", "describes", "paints", "finds", "sells", "repairs", "loves"],
    "object": [
        "a long letter",
        "the morning newspaper",
        "an old map of the island",
        "a basket of figs",
        "the story of the war",
        "a small wooden boat",
        "the first chapter",
        "a song about the sea",
    ],
    "place": [
        "in the kitchen",
        "near the harbour",
        "at the library",
        "under the olive trees",
        "in the village square",
        "on the train to Athens",
        "by the window",
        "at the market",
    ],
    "time": ["every morning", "before sunset", "in the winter", "on Sundays", "after the storm", "late at night"],
}
GREEK = {
    "subject": [
        "ο δάσκαλος",
        "η μαθήτρια",
        "η γιαγιά μου",
        "ο γέρος ψαράς",
        "οι γείτονές μας",
        "ο γιατρός",
        "ένας κουρασμένος ταξιδιώτης",
        "τα παιδιά",
        "ο αδελφός της",
        "το δημοτικό συμβούλιο",
    ],
    "verb": [
        "διαβάζει",
        "γράφει",
        "θυμάται",
        "κουβαλάει",
        "περιγράφει",
        "ζωγραφίζει",
        "βρίσκει",
        "πουλάει",
        "επισκευάζει",
        "αγαπάει",
    ],
    "object": [
        "ένα μακρύ γράμμα",
        "την πρωινή εφημερίδα",
        "έναν παλιό χάρτη του νησιού",
        "ένα καλάθι με σύκα",
        "την ιστορία του πολέμου",
        "μια μικρή ξύλινη βάρκα",
        "το πρώτο κεφάλαιο",
        "ένα τραγούδι για τη θάλασσα",
    ],
    "place": [
        "στην κουζίνα",
        "κοντά στο λιμάνι",
        "στη βιβλιοθήκη",
        "κάτω από τις ελιές",
        "στην πλατεία του χωριού",
        "στο τρένο για την Αθήνα",
        "δίπλα στο παράθυρο",
        "στην αγορά",
    ],
    "time": [
        "κάθε πρωί",
        "πριν από τη δύση του ηλίου",
        "τον χειμώνα",
        "τις Κυριακές",
        "μετά την καταιγίδα",
        "αργά τη νύχτα",
        "πρωτοχρονιάτικα",
        "μαζί με τους φίλους της, ευτυχισμένος",
    ],
}
GREEK_EXTRAS = [
    "Ο ουρανός είναι καθαρός.",
    "Οι άνθρωποι της πόλης είναι φιλόξενοι.",
    "Προϊστορικός οικισμός, ευτυχώς άθικτος.",
    "Η Ελλάδα έχει πολλούς ήλιους και θάλασσες.",
    "Αϊνστάιν, ΐδιος, ϋπνος: σπάνιοι χαρακτήρες.",
]
SPLITS = {"train": 1.0, "validation": 0.25, "test": 0.25}


def english_sentence(rng: random.Random) -> str:
    """One English sentence from the word lists."""
    words = {key: rng.choice(values) for key, values in ENGLISH.items()}
    return f"{words['subject'].capitalize()} {words['verb']} {words['object']} {words['place']} {words['time']}."


def greek_sentence(rng: random.Random) -> str:
    """One Greek sentence (accents, final sigma), sometimes followed by a fixed extra sentence."""
    words = {key: rng.choice(values) for key, values in GREEK.items()}
    subject = words["subject"][0].upper() + words["subject"][1:]
    sentence = f"{subject} {words['verb']} {words['object']} {words['place']} {words['time']}."
    return f"{sentence} {rng.choice(GREEK_EXTRAS)}" if rng.random() < 0.3 else sentence


def mixed_line(rng: random.Random) -> str:
    """An English sentence and a Greek sentence on one line."""
    return f"{english_sentence(rng)} — {greek_sentence(rng)}"


def paragraphs(language: str, target_bytes: int, seed: int) -> list[str]:
    """Paragraphs of 2–5 sentences until ``target_bytes`` UTF-8 bytes; Greek ones include mixed lines."""
    rng = random.Random(f"{language}/{seed}")
    out, size = [], 0
    while size < target_bytes:
        if language == "en":
            lines = [english_sentence(rng) for _ in range(rng.randint(2, 5))]
        else:
            lines = [mixed_line(rng) if rng.random() < 0.15 else greek_sentence(rng) for _ in range(rng.randint(2, 5))]
        paragraph = "\n".join(lines)
        out.append(paragraph)
        size += len(paragraph.encode("utf-8")) + 2
    return out


def write_corpus(
    directory: str | Path, kilobytes: int = 40, languages: tuple[str, ...] = ("en", "el")
) -> dict[str, Path]:
    """Write ``<lang>.<split>.txt`` for every language and split; returns ``{"<lang>.<split>": path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for language in languages:
        for index, (split, share) in enumerate(SPLITS.items()):
            path = directory / f"{language}.{split}.txt"
            path.write_text(
                "\n\n".join(paragraphs(language, int(kilobytes * 1024 * share), seed=index)) + "\n", "utf-8"
            )
            written[f"{language}.{split}"] = path
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="where to write <lang>.<split>.txt")
    parser.add_argument(
        "--kilobytes", type=int, default=40, help="size of each training file (validation/test: a quarter)"
    )
    args = parser.parse_args(argv)
    for name, path in write_corpus(args.directory, args.kilobytes).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
