"""A dict shared by separate processes.

    SYNCMAN_AUTHKEY=secret syncman serve --bind 127.0.0.1:50000 --typeid get_board=dict:board
    SYNCMAN_AUTHKEY=secret python3 shared_dict.py set greeting '"hello"'
    SYNCMAN_AUTHKEY=secret python3 shared_dict.py show

Roles:
- `set KEY JSON`: stores the JSON value (numbers, strings, lists, dicts) under KEY.
- `show`: prints `KEY=JSON` for every entry, sorted by key.
"""

import json
import sys
from multiprocessing.managers import BaseManager

from common import address, authkey, say


class BoardManager(BaseManager):
    pass


BoardManager.register("get_board")


def main(argv):
    m = BoardManager(address=address(), authkey=authkey())
    m.connect()
    board = m.get_board()
    if argv[:1] == ["set"] and len(argv) == 3:
        board[argv[1]] = json.loads(argv[2])
    elif argv == ["show"]:
        for key, value in sorted(board.items()):
            say(f"{key}={json.dumps(value, sort_keys=True)}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
