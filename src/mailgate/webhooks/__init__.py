"""Webhooks: events fanned out to an outbox, POSTed signed, retried, logged.

    events table ──fanout──► webhook_deliveries (the outbox) ──dispatcher──► receivers

:mod:`~mailgate.webhooks.fanout` tails the events table by id into the outbox,
:mod:`~mailgate.webhooks.outbox` claims due rows and records what a POST did,
:mod:`~mailgate.webhooks.sender` POSTs one signed request (:mod:`~mailgate.webhooks.signing`)
to a checked address (:mod:`~mailgate.webhooks.targets`), and
:mod:`~mailgate.webhooks.dispatcher` runs the loop where delivery runs.
"""
