"""Make the SVG screenshots in screenshots/ (shown in the README) from the real app, in the same
fixed state as the snapshot tests (s3rs_tui.sandbox.pictures): the dashboard mid-run and each screen.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--size 120x40]
"""

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s3rs_tui.sandbox.pictures import FOLDER, picture_app, picture_settings, play_recorded_run  # noqa: E402

# picture name -> keys pressed after the recorded run has played
PICTURES = {"dashboard": [], "watermark": ["w"], "cleanup": ["c", "7", "d"], "config": ["o"], "help": ["?"],
            "quit": ["q"]}


async def take(name: str, keys: list[str], out: Path, size: tuple[int, int]) -> Path:
    app = picture_app(picture_settings())
    async with app.run_test(size=size) as pilot:
        await play_recorded_run(pilot)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.5)
        path = out / f"{name}.svg"
        app.save_screenshot(str(path))
        app.runs.stop_all("screenshot done")  # the recorded "run" has no thread: nothing to wait for
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "screenshots")
    parser.add_argument("--size", default="120x40", help="COLSxROWS")
    opts = parser.parse_args()
    size = tuple(int(n) for n in opts.size.lower().split("x"))
    opts.out.mkdir(parents=True, exist_ok=True)
    try:
        for name, keys in PICTURES.items():
            print(asyncio.run(take(name, keys, opts.out, size)))
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
