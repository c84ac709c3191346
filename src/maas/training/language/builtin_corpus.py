"""The generator of the built-in corpus: simple English that a model of a million weights learns.

The repository ships the generated text (``corpus/tiny_english.txt``); nothing is downloaded.
Re-create it with ``python -m maas.training.language.builtin_corpus`` (a test proves the shipped
file is exactly ``generate_corpus(0)``, so the two cannot drift apart).

Documents are separated by blank lines and come in six kinds, each a fixed skeleton filled
from small word lists, so a tiny model can learn both the grammar and the facts (a cow always
says moo, two plus three is always five):

- adventures ("Once upon a time, there was a little cat named Tom. ..."),
- two friends who want different things and do both,
- a lost thing searched for in three places,
- animal facts, counting, and colours,
- conversations written in the chat template (``chat.render_chat``), so that a model trained
  here answers a chat prompt with a short reply and then ends it with ``<|im_end|>``.

``random.Random(seed)`` with ``choice``/``shuffle``/``randint`` gives the same sequence on every
platform and Python >= 3.2 for a given integer seed.
"""

from __future__ import annotations

import random
import sys
from importlib import resources
from typing import Final

from maas.training.language.chat import render_chat

__all__ = ["BUILTIN_FILE", "generate_corpus"]

BUILTIN_FILE: Final = "tiny_english.txt"
"""The shipped file's name under ``maas/training/language/corpus/``."""

_SIZE_CHARS: Final = 200_000
"""About 55k tokens at a 2k vocabulary: enough variety that validation perplexity means
something, small enough (200 KB) to ship and to read in a test."""

# name, pronoun, possessive
_NAMES: Final = (
    ("Tom", "he", "his"), ("Lily", "she", "her"), ("Ben", "he", "his"), ("Mia", "she", "her"),
    ("Sam", "he", "his"), ("Anna", "she", "her"), ("Max", "he", "his"), ("Lucy", "she", "her"),
    ("Leo", "he", "his"), ("Emma", "she", "her"), ("Jack", "he", "his"), ("Zoe", "she", "her"),
    ("Finn", "he", "his"), ("Ruby", "she", "her"), ("Noah", "he", "his"), ("Ella", "she", "her"),
)  # fmt: skip
# animal, sound, food, home
_ANIMALS: Final = (
    ("cat", "meow", "fish", "in a warm house"), ("dog", "woof", "bones", "in a little kennel"),
    ("cow", "moo", "grass", "on a big farm"), ("duck", "quack", "bread", "by the pond"),
    ("sheep", "baa", "grass", "in a green field"), ("pig", "oink", "apples", "in a muddy pen"),
    ("horse", "neigh", "hay", "in a wooden barn"), ("owl", "hoot", "mice", "in a tall tree"),
    ("frog", "ribbit", "flies", "in the pond"), ("mouse", "squeak", "cheese", "in a tiny hole"),
    ("lion", "roar", "meat", "on the hot plains"), ("bird", "tweet", "seeds", "in a nest"),
)  # fmt: skip
_PLACES: Final = (
    "a small house", "a white cottage", "a quiet village", "a busy town", "a green forest",
    "a sunny garden", "a little cabin", "an old castle",
)  # fmt: skip
_LANDMARKS: Final = ("river", "hill", "old tree", "lake", "bridge", "park", "beach", "mountain")
# base form, past form
_ACTIVITIES: Final = (
    ("play with a ball", "played with a ball"), ("read books", "read books"),
    ("sing songs", "sang songs"), ("draw pictures", "drew pictures"),
    ("run in the grass", "ran in the grass"), ("look at the clouds", "looked at the clouds"),
    ("build a sand castle", "built a sand castle"), ("fly a kite", "flew a kite"),
    ("jump in puddles", "jumped in puddles"), ("pick flowers", "picked flowers"),
    ("bake a cake", "baked a cake"), ("swim in the water", "swam in the water"),
)  # fmt: skip
_OBJECTS: Final = (
    "red ball", "shiny key", "blue box", "small map", "golden coin", "soft hat", "big leaf",
    "wooden toy", "green cup", "old book",
)  # fmt: skip
_SPOTS: Final = (
    "under the bed", "behind the door", "near the river", "in the garden", "under a rock",
    "inside a box", "on the table", "next to the tree", "in the kitchen", "under the chair",
)  # fmt: skip
_GLAD: Final = ("happy", "glad", "proud", "excited", "thankful")
_SURPRISED: Final = ("surprised", "curious", "amazed")
_KIND: Final = ("kind", "wise", "funny", "brave", "gentle", "clever", "friendly", "quiet")
_WEATHER: Final = ("sunny day", "rainy day", "windy day", "cold morning", "warm evening")
_QUOTES: Final = (
    "What is this?", "Look what I found!", "I wonder who lost this,", "This is so pretty!",
    "I must show my friend,",
)  # fmt: skip
_COLOURS: Final = (
    ("the sky", "blue"), ("the grass", "green"), ("the sun", "yellow"), ("snow", "white"),
    ("a banana", "yellow"), ("an apple", "red"), ("the sea", "blue"), ("a carrot", "orange"),
    ("coal", "black"), ("a leaf", "green"), ("a strawberry", "red"), ("milk", "white"),
)  # fmt: skip
_NUMBERS: Final = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)  # fmt: skip
_THINGS: Final = ("apples", "stones", "shells", "cookies", "flowers", "balls", "stars", "books")
_SYSTEM: Final = "You are a helpful assistant."


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _adventure(r: random.Random) -> str:
    name, he, _ = r.choice(_NAMES)
    animal, _, _, _ = r.choice(_ANIMALS)
    friend, _, _ = r.choice([n for n in _NAMES if n[0] != name])
    animal2, sound2, _, _ = r.choice([a for a in _ANIMALS if a[0] != animal])
    (act, _), (_, act2) = r.sample(_ACTIVITIES, 2)
    thing = r.choice(_OBJECTS)
    return (
        f"Once upon a time, there was a little {animal} named {name}. {name} lived in "
        f"{r.choice(_PLACES)} near the {r.choice(_LANDMARKS)}. Every day, {name} liked to {act}. "
        f"One day, {name} found {_a(thing)} {r.choice(_SPOTS)}. {_cap(he)} was very "
        f'{r.choice(_SURPRISED)}. "{r.choice(_QUOTES)}" said {name}. {name} showed the {thing} '
        f"to {friend}, {_a(r.choice(_KIND))} {animal2}. The {animal2} said, "
        f'"{_cap(sound2)}!" Together they {act2}. At the end of the day, {name} felt '
        f"{r.choice(_GLAD)}. The end."
    )


def _two_friends(r: random.Random) -> str:
    (name, _, _), (friend, _, _) = r.sample(_NAMES, 2)
    (animal, *_), (animal2, *_) = r.sample(_ANIMALS, 2)
    (act, past), (act2, past2) = r.sample(_ACTIVITIES, 2)
    return (
        f"{name} and {friend} were best friends. {name} was {_a(animal)} and {friend} was "
        f"{_a(animal2)}. One {r.choice(_WEATHER)}, they went to the {r.choice(_LANDMARKS)}. "
        f"{friend} wanted to {act}, but {name} wanted to {act2}. "
        f'"Let us do both," said {name}. So first they {past}, and then they {past2}. '
        f"They were very {r.choice(_GLAD)}. The end."
    )


def _lost_thing(r: random.Random) -> str:
    name, he, his = r.choice(_NAMES)
    animal, sound, _, _ = r.choice(_ANIMALS)
    thing = r.choice(_OBJECTS)
    first, second, third = r.sample(_SPOTS, 3)
    return (
        f"One morning, {name} the {animal} could not find {his} {thing}. {name} looked "
        f"{first}. It was not there. {name} looked {second}. It was not there. Then {name} "
        f"looked {third}, and there it was! {name} was so {r.choice(_GLAD)} that {he} said, "
        f'"{_cap(sound)}!" The end.'
    )


def _animal_facts(r: random.Random) -> str:
    sentences = []
    for animal, sound, food, home in r.sample(_ANIMALS, r.randint(2, 4)):
        sentences.append(
            f"This is {_a(animal)}. The {animal} says {sound}. The {animal} eats {food}. "
            f"The {animal} lives {home}."
        )
    return " ".join(sentences)


def _counting(r: random.Random) -> str:
    (name, _, _), (friend, _, _) = r.sample(_NAMES, 2)
    things = r.choice(_THINGS)
    have = r.randint(2, 6)  # from two: "one apples" is not English
    more = r.randint(2, 10 - have)
    return (
        f"{name} has {_NUMBERS[have]} {things}. {friend} gives {name} {_NUMBERS[more]} more "
        f"{things}. Now {name} has {_NUMBERS[have + more]} {things}. {_cap(_NUMBERS[have])} "
        f"plus {_NUMBERS[more]} is {_NUMBERS[have + more]}."
    )


def _colours(r: random.Random) -> str:
    return " ".join(f"{_cap(t)} is {c}." for t, c in r.sample(_COLOURS, r.randint(3, 6)))


def _question(r: random.Random) -> tuple[str, str]:
    kind = r.randrange(6)
    animal, sound, food, home = r.choice(_ANIMALS)
    if kind == 0:
        return f"What does {_a(animal)} say?", f"{_cap(_a(animal))} says {sound}."
    if kind == 1:
        return f"What does {_a(animal)} eat?", f"{_cap(_a(animal))} eats {food}."
    if kind == 2:
        return f"Where does {_a(animal)} live?", f"{_cap(_a(animal))} lives {home}."
    if kind == 3:
        thing, colour = r.choice(_COLOURS)
        return f"What colour is {thing}?", f"{_cap(thing)} is {colour}."
    if kind == 4:
        a = r.randint(0, 5)
        b = r.randint(0, 10 - a)
        total = _NUMBERS[a + b]
        return f"What is {_NUMBERS[a]} plus {_NUMBERS[b]}?", (
            f"{_cap(_NUMBERS[a])} plus {_NUMBERS[b]} is {total}."
        )
    return f"Tell me a story about {_a(animal)}.", _lost_thing_for(r, animal, sound)


def _lost_thing_for(r: random.Random, animal: str, sound: str) -> str:
    name, he, his = r.choice(_NAMES)
    thing, spot = r.choice(_OBJECTS), r.choice(_SPOTS)
    return (
        f"Once upon a time, there was {_a(animal)} named {name}. {name} lost {his} {thing}. "
        f'{_cap(he)} found it {spot} and said, "{_cap(sound)}!" The end.'
    )


def _conversation(r: random.Random) -> str:
    messages = [{"role": "system", "content": _SYSTEM}] if r.random() < 0.3 else []
    if r.random() < 0.2:
        messages += [
            {"role": "user", "content": r.choice(("Hello!", "Hi!", "Good morning!"))},
            {"role": "assistant", "content": "Hello! How can I help you today?"},
        ]
    for _ in range(r.randint(1, 2)):
        question, answer = _question(r)
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    if r.random() < 0.2:
        messages += [
            {"role": "user", "content": "Thank you!"},
            {"role": "assistant", "content": "You are welcome!"},
        ]
    return render_chat(messages, add_generation_prompt=False).rstrip("\n")


_KINDS: Final = (
    (_adventure, 3), (_two_friends, 2), (_lost_thing, 2), (_animal_facts, 1), (_counting, 1),
    (_colours, 1), (_conversation, 3),
)  # fmt: skip


def generate_corpus(seed: int = 0, *, size_chars: int = _SIZE_CHARS) -> str:
    """Documents separated by blank lines, ``size_chars`` long or a document more.

    >>> generate_corpus(0, size_chars=1).count("\\n\\n")  # one document
    0
    """
    r = random.Random(seed)
    makers = [maker for maker, weight in _KINDS for _ in range(weight)]
    documents: list[str] = []
    total = 0
    while total < size_chars:
        documents.append(r.choice(makers)(r))
        total += len(documents[-1]) + 2
    return "\n\n".join(documents) + "\n"


def main() -> None:
    """Rewrite the shipped file from ``generate_corpus(0)`` (run from a source checkout)."""
    target = resources.files("maas.training.language") / "corpus" / BUILTIN_FILE
    with resources.as_file(target) as path:
        path.write_text(generate_corpus(0), encoding="utf-8", newline="\n")
        sys.stdout.write(f"wrote {path.stat().st_size} bytes to {path.name}\n")


if __name__ == "__main__":
    main()
