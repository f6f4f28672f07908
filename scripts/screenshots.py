"""Make the SVG screenshots in screenshots/ (shown in the README) from the real app, in the same
fixed state as the snapshot tests (s3rs_tui.sandbox.pictures): the dashboard mid-run, in each state
of sandbox.pictures.STATES, and each screen (opened on an idle table: a running one refuses them).

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--size 200x50]
"""

import argparse
import asyncio
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s3rs_tui.sandbox.pictures import (
    FOLDER,
    STATES,
    folder_taken,
    picture_app,
    picture_settings,
    play_recorded_run,
    show_state,
)


async def idle(pilot) -> None:
    await pilot.pause(0.3)


# picture name -> (how the dashboard gets there, keys pressed after)
PICTURES = {"dashboard": (play_recorded_run, []), "log": (play_recorded_run, ["m"]),
            "quit": (play_recorded_run, ["q"]), "watermark": (idle, ["w"]),
            "cleanup": (idle, ["c", "7", "d"]), "config": (idle, ["o"]), "help": (idle, ["question_mark"]),
            **{f"state-{name}": (functools.partial(show_state, **fields), [])
               for name, fields in STATES.items()}}


async def take(name: str, out: Path, size: tuple[int, int]) -> Path:
    setup, keys = PICTURES[name]
    app = picture_app(picture_settings())
    async with app.run_test(size=size) as pilot:
        await setup(pilot)
        for key in keys:
            await pilot.press(key)
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        path = out / f"{name}.svg"
        app.save_screenshot(str(path))
        app.runs.stop_all("screenshot done")  # the recorded "run" has no thread: nothing to wait for
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "screenshots")
    parser.add_argument("--size", default="200x50", help="COLSxROWS")
    opts = parser.parse_args()
    size = tuple(int(n) for n in opts.size.lower().split("x"))
    opts.out.mkdir(parents=True, exist_ok=True)
    with folder_taken(FOLDER):
        for name in PICTURES:
            print(asyncio.run(take(name, opts.out, size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
