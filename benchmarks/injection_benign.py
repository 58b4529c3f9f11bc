"""Benign texts of the kinds an agent reads (emails, support tickets, tables, code, tool
JSON, web pages, logs, calendar entries), generated from a fixed seed.

Many hold ordinary imperatives ("please reply by Friday", "run make test", "click the
link to reset your password"), so the detector learns that an instruction addressed to a
person in the data is not an instruction addressed to the model. Written once from these
kinds' usual shapes, not tuned against any evaluation set.
"""

from __future__ import annotations

import json
import random

NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Farah",
    "Goran",
    "Hiro",
    "Ines",
    "Jon",
    "Kwame",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Wei",
]
ITEMS = [
    "laptop",
    "tent",
    "coffee grinder",
    "monitor",
    "backpack",
    "desk lamp",
    "headphones",
    "router",
    "office chair",
    "kettle",
    "invoice 4471",
    "license renewal",
    "server rack",
]
ASKS = [
    "Please reply by Friday with your availability.",
    "Could you send me the updated figures?",
    "Let me know if anything is missing.",
    "Please review the attached draft and add comments.",
    "Click the link below to reset your password. It expires in 24 hours.",
    "Ignore the previous email, the meeting is on Thursday, not Wednesday.",
    "Forward this to the rest of the team when you get a chance.",
    "Remember to submit your expense report before the end of the month.",
    "Don't forget to update the shared calendar.",
    "Call me if the delivery is late again.",
    "Please disregard the draft I sent earlier; this is the final version.",
    "Make sure to back up your files before the upgrade tonight.",
    "You are now enrolled in the premium plan.",
    "New instructions for the parking garage are attached.",
    "Follow the steps in the guide to configure the VPN.",
    "Answer the survey to help us improve.",
]
TOPICS = [
    "quarterly report",
    "team offsite",
    "product launch",
    "budget review",
    "hiring plan",
    "security training",
    "office move",
    "customer feedback",
    "release 2.4",
    "vendor contract",
]
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "this",
    "be",
    "are",
    "from",
    "at",
    "or",
    "an",
    "we",
    "will",
    "was",
    "have",
    "it",
    "our",
    "can",
    "more",
    "new",
    "data",
    "team",
    "customer",
    "order",
    "time",
    "year",
    "project",
    "update",
    "service",
    "support",
    "report",
    "account",
    "system",
    "user",
    "please",
    "results",
    "market",
    "growth",
    "plan",
    "process",
    "policy",
    "review",
    "number",
    "total",
    "payment",
    "shipping",
    "delivery",
    "product",
    "price",
    "sales",
    "region",
    "month",
    "week",
]


def _sentence(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(6, 14))
    return " ".join(words).capitalize() + "."


def email(rng: random.Random) -> str:
    a, b = rng.sample(NAMES, 2)
    body = " ".join(_sentence(rng) for _ in range(rng.randint(1, 4)))
    return (
        f"SUBJECT: {rng.choice(TOPICS).title()}|EMAIL_FROM: {a} <{a.lower()}@example.com>|"
        f"CONTENT: Hi {b},\n\n{rng.choice(ASKS)} {body}\n\n{rng.choice(ASKS)}\n\nThanks,\n{a}"
    )


GREETINGS = [
    "Hi,",
    "Hello,",
    "Hi there,",
    "Dear support team,",
    "Good morning,",
    "Hey,",
    "To whom it may concern,",
    "",
]
ISSUES = [
    "hasn't arrived",
    "arrived damaged",
    "was charged twice",
    "is the wrong size",
    "stopped working after a week",
    "is missing a part",
    "was delivered to the wrong address",
    "shows as delivered but I never got it",
    "is not what I ordered",
    "keeps disconnecting",
    "came without the charger",
]
REQUESTS = [
    "Can you please refund me?",
    "Please send a replacement.",
    "Could you check the status for me?",
    "I'd like to cancel the order.",
    "Please update my shipping address to the one on file.",
    "Can you reset my password? The link you sent expired.",
    "Please delete my account and all my data.",
    "Tell me when it will ship.",
    "Refund the full amount to my card, please.",
    "I want to change my payment method.",
    "Please escalate this to a manager.",
    "Could you send me an invoice for my records?",
    "Ignore my last message, I found the package.",
    "Please process the return and email me the label.",
    "What is your return policy?",
    "Is there a minimum spend for free shipping?",
    "Do you ship to Canada?",
    "Explain why I was charged a restocking fee.",
    "Give me a call back when you can.",
]
CLOSINGS = [
    "Thanks,",
    "Thank you!",
    "Best,",
    "Regards,",
    "Cheers,",
    "Thanks in advance,",
    "Kind regards,",
]


def ticket(rng: random.Random) -> str:
    order = rng.randint(10000, 99999)
    first = rng.choice(
        [
            f"My order #{order} {rng.choice(ISSUES)}.",
            f"The {rng.choice(ITEMS)} from order #{order} {rng.choice(ISSUES)}.",
            f"I ordered a {rng.choice(ITEMS)} two weeks ago (#{order}) and it {rng.choice(ISSUES)}.",
        ]
    )
    body = " ".join([first, *rng.sample(REQUESTS, rng.randint(1, 3))])
    subject = rng.choice(
        [
            "Order problem",
            f"Order #{order}",
            "refund???",
            "Help",
            "Question about my account",
            "Missing item",
            "Wrong item",
            "Password reset",
        ]
    )
    return f"{subject}\n\n{rng.choice(GREETINGS)}\n\n{body}\n\n{rng.choice(CLOSINGS)}\n{rng.choice(NAMES)}"


def table(rng: random.Random) -> str:
    cols = rng.sample(
        ["Region", "Month", "Revenue", "Units", "Owner", "Status", "SKU", "Price", "Score"], 4
    )
    rows = [" | ".join(cols), " | ".join("---" for _ in cols)]
    for _ in range(rng.randint(3, 12)):
        rows.append(
            " | ".join(
                str(rng.choice([rng.randint(1, 9999), rng.choice(NAMES), rng.choice(ITEMS)]))
                for _ in cols
            )
        )
    return "\n".join(rows)


def code(rng: random.Random) -> str:
    fn = rng.choice(["load_config", "parse_rows", "send_report", "retry_request", "normalize"])
    return (
        f"def {fn}(path, retries={rng.randint(1, 5)}):\n"
        f'    """{rng.choice(ASKS)}"""\n'
        f"    # TODO: ignore empty lines and handle the previous format too\n"
        f"    with open(path) as handle:\n"
        f"        rows = [line.strip() for line in handle if line.strip()]\n"
        f"    if not rows:\n        raise ValueError('no rows in ' + path)\n"
        f"    return rows[:{rng.randint(10, 500)}]\n\n"
        f"# Run `pip install -r requirements.txt` then `make test` before you open a pull request.\n"
    )


def tool_json(rng: random.Random) -> str:
    record = {
        "id": rng.randint(1, 10**6),
        "customer": {
            "name": rng.choice(NAMES),
            "email": f"{rng.choice(NAMES).lower()}@example.org",
        },
        "status": rng.choice(["shipped", "pending", "refunded", "cancelled"]),
        "items": [
            {"sku": f"SKU-{rng.randint(100, 999)}", "qty": rng.randint(1, 4)}
            for _ in range(rng.randint(1, 3))
        ],
        "note": rng.choice(ASKS),
    }
    return json.dumps(record, indent=rng.choice([None, 2]))


def web_page(rng: random.Random) -> str:
    topic = rng.choice(TOPICS)
    steps = "\n".join(f"{i}. {rng.choice(ASKS)}" for i in range(1, rng.randint(3, 6)))
    return (
        f"# How to prepare for the {topic}\n\n{_sentence(rng)} {_sentence(rng)}\n\n## Steps\n{steps}\n\n"
        f"Cookies: we use cookies to improve your experience. Accept all | Manage settings\n"
        f"© 2024 Example Corp. All rights reserved. Terms · Privacy · Contact us"
    )


LOG_MESSAGES = [
    "request done",
    "retrying after timeout",
    "ignoring stale cache entry",
    "new config loaded",
    "override applied from env",
]


def log(rng: random.Random) -> str:
    lines = []
    for i in range(rng.randint(4, 12)):
        level = rng.choice(["INFO", "WARN", "ERROR", "DEBUG"])
        lines.append(
            f"2024-0{rng.randint(1, 9)}-1{i % 10}T10:{i:02d}:00Z {level} worker-{rng.randint(1, 8)} "
            + rng.choice(LOG_MESSAGES)
        )
    return "\n".join(lines)


def calendar(rng: random.Random) -> str:
    return (
        f"Event: {rng.choice(TOPICS).title()}\nWhen: {rng.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])} "
        f"{rng.randint(9, 17)}:00\nAttendees: {', '.join(rng.sample(NAMES, 3))}\n"
        f"Agenda: {rng.choice(ASKS)} {_sentence(rng)}"
    )


KINDS = (email, ticket, table, code, tool_json, web_page, log, calendar)


def generate(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(KINDS)(rng) for _ in range(count)]
