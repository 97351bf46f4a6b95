"""The diary's server-side dictation (maeum.app.speech.Recognizer, the packaged Whisper base) on
diary sentences spoken by espeak-ng, in Korean and in English.

    python benchmarks/dictation.py [--sentences 40] [--threads 2] [--compute-type int8|float32]

Korean: the first N sentences of tests/data/diary_sentences_ko.tsv; English: the sentences below.
Each is read by espeak-ng (140 words/min) and transcribed in its language. Printed per language:
the character error rate (edit distance over the sentence's characters, case, spaces and
punctuation ignored), the sentences heard exactly, the time per sentence and against the audio's
length; then the model's load time and this process's peak memory.

espeak-ng's Korean voice is barely intelligible (its English is far better), so the Korean error
rate describes that voice, not how Whisper hears people; no recorded Korean speech was at hand.
The English rows show what the same pipeline does when the voice is clear.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import time

from _common import REPO, out, peak_rss_mb, positive, run, table
from maeum.app.speech import COMPUTE_TYPES, SAMPLE_RATE, Recognizer, decode_audio

SENTENCES = REPO / "tests" / "data" / "diary_sentences_ko.tsv"
NOT_COUNTED = re.compile(r"[\s.,!?~…'\"()\-]+")
ENGLISH = [
    "Today I went for a walk in the park with my friend.",
    "I was so happy when I got the letter from my sister.",
    "The bus was late again and I missed the meeting.",
    "I cried a little when I watched the movie last night.",
    "My dog was waiting for me at the door.",
    "I am worried about the exam tomorrow morning.",
    "We had dinner together and laughed a lot.",
    "It rained all day so I stayed at home and read a book.",
    "My boss shouted at me in front of everyone.",
    "I felt lonely after everyone went home.",
    "The coffee at the new cafe was really good.",
    "I could not sleep because of the noise upstairs.",
    "My mother called me and asked if I was eating well.",
    "I finished the project and everyone liked it.",
    "I was scared when the lights went out.",
    "Tomorrow I will visit my grandmother in the hospital.",
    "I lost my wallet on the subway this morning.",
    "The sunset over the river was beautiful.",
    "I argued with my brother about nothing.",
    "I think today was an ordinary but good day.",
]


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=positive(int), default=40)
    p.add_argument("--threads", type=positive(int), default=2)
    p.add_argument("--compute-type", default="int8", choices=COMPUTE_TYPES, help="int8: maeum's default")
    args = p.parse_args()
    with SENTENCES.open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    sentences = [text for _label, text in rows[: args.sentences]]

    recognizer = Recognizer(threads=args.threads, compute_type=args.compute_type)
    start = time.perf_counter()
    recognizer.load()
    load_s = time.perf_counter() - start

    results, examples = [], []
    for lang, voice, texts in (("ko", "ko", sentences), ("en", "en-us", ENGLISH)):
        errors = chars = exact = 0
        audio_s = work_s = 0.0
        for text in texts:
            wav = subprocess.run(
                ["espeak-ng", "-v", voice, "-s", "140", "--stdout", text], capture_output=True, check=True
            ).stdout
            audio_s += decode_audio(wav, 600).size / SAMPLE_RATE
            start = time.perf_counter()
            heard = recognizer.transcribe(wav, lang)
            work_s += time.perf_counter() - start
            want, got = (NOT_COUNTED.sub("", t).lower() for t in (text, heard))
            errors += edit_distance(want, got)
            chars += len(want)
            exact += want == got
            if len(examples) < 3 * (1 + (lang == "en")):
                examples.append([lang, text, heard])
        results.append(
            [
                lang,
                len(texts),
                f"{audio_s:.0f}",
                f"{errors / chars:.3f}",
                f"{exact}/{len(texts)}",
                f"{work_s / len(texts):.2f}",
                f"{work_s / audio_s:.2f}",
            ]
        )

    out(
        f"Whisper base (packaged), {args.compute_type}, {args.threads} threads; "
        f"load {load_s:.1f} s; peak RSS {peak_rss_mb():.0f} MB\n"
    )
    header = ["language", "sentences", "audio s", "CER", "exact", "s/sentence", "real-time factor"]
    out(table(results, header))
    out("\n" + table(examples, ["language", "spoken", "heard"]))


if __name__ == "__main__":
    run(main)
