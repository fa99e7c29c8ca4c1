#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The query half of DnsVsNsd.SameZoneSameAnswers (dns_nsd_test.cc): sends the same few hundred
# queries to berth and to NSD, both serving tests/data/dns/nsd_diff.zone, and compares rcode,
# the AA/TC flags, EDNS (version, DO), the question as echoed (case included) and each section
# as a set of RRs (TTL included, RR order within a set ignored). Prints every difference with
# the query and both answers; exits 1 when there is one, 0 otherwise.
#
#   /usr/bin/python3 dns_nsd_diff.py BERTH_PORT NSD_PORT
import socket
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

ZONE = "example.com."

# Names relative to the zone ("@" is the apex): data, CNAMEs, wildcards, an empty
# non-terminal, a delegation and the names below it, names that do not exist.
NAMES = [
    "@", "ns1", "ns2", "www", "mail", "alias1", "alias2", "dangling", "ext", "tosub", "towild",
    "tomail", "tonet", "loop1", "long", "multi", "_sip._tcp", "_tcp", "sip", "ptr", "10", "x.wild",
    "a.b.wild", "exact.wild", "wild", "*.wild", "x.cw", "ent", "b.ent", "a.b.ent", "c.b.ent",
    "sub", "host.sub", "ns1.sub", "deep.host.sub", "big", "medium", "nx", "deep.nx",
    "WWW", "Mail", "eXact.WiLd", "Y.Wild", "HOST.Sub", "ALIAS1",
]
TYPES = ["A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "SRV", "CAA", "PTR", "ANY", "DS"]

# Queries sent with other options on top of the plain ones (EDNS 1232, UDP, RD).
VARIANT_NAMES = ["@", "www", "alias1", "x.wild", "host.sub", "nx", "b.ent", "big", "medium",
                 "multi", "_sip._tcp", "dangling"]
VARIANT_TYPES = ["A", "TXT", "MX", "NS", "SOA", "SRV"]
VARIANTS = ["noedns", "dnssec", "bufsize512", "tcp", "norec", "edns1"]



def any_picks_another_set(rel, rtype, variant, b, n, nsd_port):
    """RFC 8482 §4.2 lets an ANY reply hold any one set at the name. berth and NSD 4.6 both
    send one set, but NSD takes the first in zone-file order, which berth does not keep
    (it takes the first in type order, docs/dns.md). Accepted when berth's one set is exactly
    what NSD answers for that type, and the rest of the reply matches."""
    if rtype != "ANY" or "rcode" not in b:
        return False
    same = {k: v for k, v in b.items() if k not in ("answer", "additional", "counts")}
    if same != {k: v for k, v in n.items() if k not in ("answer", "additional", "counts")}:
        return False
    types = {rr.split()[3] for rr in b["answer"]}
    if len(types) != 1 or b["authority"]:
        return False
    t = types.pop()
    q = make(rel, t, variant)
    return canon(ask(q, nsd_port, variant == "tcp"))["answer"] == b["answer"]


def cname_into_another_zone(rel, rtype, variant, b, n, nsd_port):
    """berth follows a CNAME only within the zone the query fell in (docs/dns.md, answer.cc);
    NSD goes on into any zone it hosts (tonet.example.com -> www.example.net). Accepted when
    berth's answer is NSD's first CNAME alone, with the same rcode and flags."""
    if not rel.startswith("tonet") or "rcode" not in b or rtype in ("CNAME", "ANY"):
        return False
    cname = [rr for rr in n["answer"] if rr.split()[3] == "CNAME"]
    return (b["rcode"] == n["rcode"] and b["flags"] == n["flags"] and b["answer"] == cname and
            not b["authority"] and not b["additional"])


# Differences that are deliberate and documented (docs/dns.md): (predicate, reason).
EXCEPTIONS = [(any_picks_another_set, "ANY: berth's one set is another of the name's sets"),
              (cname_into_another_zone, "CNAME into another hosted zone not followed")]


def qname(rel):
    return ZONE if rel == "@" else rel + "." + ZONE


def make(rel, rtype, variant):
    name = dns.name.from_text(qname(rel))
    use_edns = 0
    payload = 1232
    if variant == "noedns":
        use_edns = False
    if variant == "bufsize512":
        payload = 512
    q = dns.message.make_query(name, rtype, use_edns=use_edns, payload=payload,
                               want_dnssec=(variant == "dnssec"))
    if variant == "norec":
        q.flags &= ~dns.flags.RD
    if variant == "edns1":
        q.use_edns(1, payload=1232)
    return q


def ask(q, port, tcp):
    wire = q.to_wire()
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            data = b""
            while len(data) < 2:
                data += s.recv(65537)
            want = int.from_bytes(data[:2], "big") + 2
            while len(data) < want:
                chunk = s.recv(65537)
                if not chunk:
                    break
                data += chunk
            reply = data[2:want]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(wire, ("127.0.0.1", port))
            reply, _ = s.recvfrom(65535)
    m = dns.message.from_wire(reply, ignore_trailing=True, raise_on_truncation=False)
    # dnspython merges repeated RRs into one set: keep the header's counts to see them.
    m.wire_counts = "an=%d ns=%d ar=%d" % struct.unpack("!HHH", reply[6:12])
    return m


def canon(m):
    def section(rrsets):
        out = []  # a list, so that a repeated RR is a difference
        for rrset in rrsets:
            if rrset.rdtype == dns.rdatatype.OPT:
                continue
            for rd in rrset:
                out.append("%s %d %s %s %s" % (rrset.name.to_text().lower(), rrset.ttl,
                                             dns.rdataclass.to_text(rrset.rdclass),
                                             dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
        return sorted(out)

    flags = [f for f in ("AA", "TC", "RD", "RA") if m.flags & dns.flags.from_text(f)]
    return {
        "rcode": dns.rcode.to_text(m.rcode()),
        "flags": " ".join(flags),
        "edns": "none" if m.edns < 0 else "v%d do=%d" % (m.edns, 1 if m.ednsflags & dns.flags.DO
                                                          else 0),
        "counts": m.wire_counts,
        "question": " ".join(q.name.to_text() + " " + dns.rdatatype.to_text(q.rdtype)
                             for q in m.question),
        "answer": section(m.answer),
        "authority": section(m.authority),
        "additional": section(m.additional),
    }


def show(c):
    lines = ["  rcode=%s flags=[%s] edns=%s question=%s %s" % (
        c["rcode"], c["flags"], c["edns"], c["question"], c["counts"])]
    for s in ("answer", "authority", "additional"):
        for rr in c[s]:
            lines.append("  %-10s %s" % (s, rr))
    return "\n".join(lines)


def main():
    berth, nsd = int(sys.argv[1]), int(sys.argv[2])
    queries = [(n, t, "plain") for n in NAMES for t in TYPES]
    queries += [(n, t, v) for v in VARIANTS for n in VARIANT_NAMES for t in VARIANT_TYPES]
    queries += [("nx.example.org.", "A", "plain"), ("com.", "SOA", "plain"),
                ("www.example.net.", "A", "plain"), ("example.net.", "SOA", "plain")]
    diffs = excepted = 0
    for rel, rtype, variant in queries:
        q = make(rel.rstrip(".") if rel.endswith(".") else rel, rtype, variant)
        if rel.endswith("."):
            q = dns.message.make_query(rel, rtype, use_edns=0, payload=1232)
        tcp = variant == "tcp"
        try:
            b = canon(ask(q, berth, tcp))
        except Exception as e:  # noqa: BLE001 (a failure to answer is a difference)
            b = {"error": repr(e)}
        n = canon(ask(q, nsd, tcp))
        if b == n:
            continue
        label = "%s %s +%s" % (q.question[0].name.to_text(), rtype, variant)
        reason = next((why for pred, why in EXCEPTIONS if pred(rel, rtype, variant, b, n, nsd)),
                      None)
        if reason:
            excepted += 1
            print("EXCEPTED (%s): %s" % (reason, label))
            continue
        diffs += 1
        print("DIFF %s\n berth:\n%s\n nsd:\n%s" % (label, show(b) if "rcode" in b else b,
                                                   show(n)))
    print("queries=%d diffs=%d excepted=%d" % (len(queries), diffs, excepted))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
