"""Files the CLI tests hand to the command: the example config and a history that fires."""

from pathlib import Path

from tests.pipeline.engine.builders import mail

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = str(REPO / "deploy" / "examples" / "floodgate.yaml")


def write_history(path: Path) -> str:
    """Alice bursts 70 messages in 14 s; a spammer sends 12 spams in 12 s; carol is quiet."""
    events = [mail(i * 200, sasl_username="alice", sender="alice@example.net") for i in range(70)]
    events += [mail(i * 1_000, sasl_username="mallory", sender="promo@spam.example",
                    spam=True, spam_score=15.0) for i in range(12)]
    events += [mail(i * 5_000, sasl_username="carol", sender="carol@example.net")
               for i in range(20)]
    events += [mail(4_000_000, sasl_username="carol", sender="carol@example.net")]  # 66 min later
    events.sort(key=lambda e: e.ts)
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return str(path)
