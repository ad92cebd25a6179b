"""The wire protocol's version, the one place it is written.

The widget publishes it as the ``protocol_version`` trait; the front end refuses to run when its
own version (``js/protocol.ts``) differs, and says to rebuild or reinstall. History: 2 added
clicks, boxes and ``apply_mask``; 3 added the propagation range, ``undo`` of any session step
(rounds and object deletions) in place of ``undo_round``, and the range in ``round_started``.
"""

from __future__ import annotations

PROTOCOL_VERSION = 3
