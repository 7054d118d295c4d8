"""status/deliveries read models → the text an organizer reads in a terminal."""

from __future__ import annotations

from delivery.services.reports import CampaignStatus, DeliveryReport


def status_text(s: CampaignStatus) -> str:
    lines = [
        f"{s.title} ({s.campaign})",
        f"signers: {s.signers:,} of {s.goal:,} ({s.percent}%)",
        "milestones reached: " + (", ".join(
            f"{m.threshold:,} ({m.reached_at[:10]}, delivery {m.delivery or '-'})"
            for m in s.milestones_reached) or "none"),
        f"next milestone: {s.next_milestone:,}" if s.next_milestone else "every milestone reached",
    ]
    if s.milestones_pending:
        lines.append("passed, delivery created at the next tick: "
                     + ", ".join(f"{t:,}" for t in s.milestones_pending))
    for p in s.smtp_paused:
        lines.append(f"SENDING PAUSED for {p.account} since {p.since}: {p.reason}")
    if s.deliveries:
        lines.append("deliveries:")
        lines += [_delivery_line(d) for d in s.deliveries]
    else:
        lines.append("deliveries: none yet")
    return "\n".join(lines)


def _delivery_line(d: DeliveryReport) -> str:
    counts: dict[str, int] = {}
    for m in d.dossier_messages:
        counts[m.status] = counts.get(m.status, 0) + 1
    msgs = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no messages"
    what = f"milestone {d.milestone:,}" if d.milestone else d.trigger
    extra = f"; held until {d.hold_until}" if d.status == "held" else ""
    error = f"; error: {d.error}" if d.error else ""
    return (f"  {d.id}  {d.status:<9} {what}, {d.signer_count:,} signers, "
            f"created {d.created_at}: {msgs}{extra}{error}")


def deliveries_text(data: list[DeliveryReport]) -> str:
    if not data:
        return "no deliveries yet"
    out = []
    for d in data:
        out.append(_delivery_line(d))
        for f in d.files:
            out.append(f"      file {f.name}  {f.size:,} bytes  {f.pages or '-'} pages  "
                       f"sha256 {f.sha256}")
        for m in d.messages:
            nxt = f", next attempt {m.next_attempt_at}" if m.next_attempt_at else ""
            crash = f", resent after a crash {m.crash_resends}x" if m.crash_resends else ""
            part = (f" part {m.part}{' (smaller e-mails)' if m.cut else ''}"
                    if m.kind == "dossier" else "")
            queued = f" (queue id {m.queue_id})" if m.queue_id else ""
            out.append(f"      {m.kind:<7} {m.recipient}{part}: {m.status}{queued}, "
                       f"{m.attempts} attempt(s), last answer: {m.last_answer or '-'}{nxt}{crash}")
            if m.link is not None:
                got = (f"downloaded {m.link.downloads}x, first {m.link.first_download_at}, last "
                       f"{m.link.last_download_at}" if m.link.downloads else "not downloaded yet")
                ack = f", receipt confirmed {m.link.acknowledged_at}" if m.link.acknowledged_at else ""
                out.append(f"              link {m.link.state} until {m.link.expires_at}: {got}{ack}")
            if m.bounce:
                said = "returned" if m.bounce == "failed" else "delayed, the server still tries"
                out.append(f"              {said} ({m.bounced_at}): {m.bounce_status or '-'} "
                           f"{m.bounce_diagnostic or ''}".rstrip())
    return "\n".join(out)
