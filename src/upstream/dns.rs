//! A small DNS stub resolver (RFC 1035 over UDP) for discovery: A, AAAA and
//! SRV questions to one configured server, answers with their TTLs.
//! Written here rather than pulled in because discovery needs only this,
//! needs the TTLs, and must be pointable at any `IP:PORT` (tests run a DNS
//! server on an ephemeral port). Truncated answers are used as they are
//! (no TCP fallback); CNAME chains are followed by taking every address
//! record of the answer section.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::spec::DnsTarget;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    Io(String),
    Timeout,
    /// The server answered with this RCODE (2 SERVFAIL, 5 REFUSED...).
    Rcode(u8),
    Malformed,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::Io(e) => write!(f, "i/o error: {e}"),
            DnsError::Timeout => f.write_str("no answer in time"),
            DnsError::Rcode(c) => write!(f, "server answered rcode {c}"),
            DnsError::Malformed => f.write_str("malformed answer"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    Addr(IpAddr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub ttl: u32,
    pub data: Rdata,
}

/// A parsed answer: answer-section and additional-section records.
/// NXDOMAIN is an empty, successful answer (the name has no endpoints).
#[derive(Debug, Default)]
pub struct Answer {
    pub answers: Vec<Record>,
    pub additional: Vec<Record>,
}

/// Resolves `target` to socket addresses and the smallest TTL seen.
pub async fn resolve(
    server: SocketAddr,
    target: &DnsTarget,
    timeout: Duration,
) -> Result<(Vec<SocketAddr>, Option<Duration>), DnsError> {
    let mut ttl: Option<u32> = None;
    let mut note = |t: u32| ttl = Some(ttl.map_or(t, |x| x.min(t)));
    let mut out = Vec::new();
    match target {
        DnsTarget::Host { host, port } => {
            for (ip, t) in addresses(server, host, timeout).await? {
                note(t);
                out.push(SocketAddr::new(ip, *port));
            }
        }
        DnsTarget::Srv(name) => {
            let a = query(server, name, TYPE_SRV, timeout).await?;
            let srvs: Vec<(&Record, u16, u16, &str)> = a
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    Rdata::Srv {
                        priority,
                        port,
                        target,
                        ..
                    } => Some((r, *priority, *port, target.as_str())),
                    _ => None,
                })
                .collect();
            let best = srvs.iter().map(|s| s.1).min();
            let mut glue: HashMap<&str, Vec<(IpAddr, u32)>> = HashMap::new();
            for r in &a.additional {
                if let Rdata::Addr(ip) = r.data {
                    glue.entry(r.name.as_str()).or_default().push((ip, r.ttl));
                }
            }
            for (r, _, port, tgt) in srvs.iter().filter(|s| Some(s.1) == best) {
                note(r.ttl);
                let ips = match glue.get(tgt) {
                    Some(ips) => ips.clone(),
                    None => addresses(server, tgt, timeout).await?,
                };
                for (ip, t) in ips {
                    note(t);
                    out.push(SocketAddr::new(ip, *port));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok((out, ttl.map(|t| Duration::from_secs(u64::from(t)))))
}

/// A and AAAA records of `host`; fails only when both questions fail.
async fn addresses(
    server: SocketAddr,
    host: &str,
    timeout: Duration,
) -> Result<Vec<(IpAddr, u32)>, DnsError> {
    let (a, aaaa) = tokio::join!(
        query(server, host, TYPE_A, timeout),
        query(server, host, TYPE_AAAA, timeout)
    );
    if let (Err(e), Err(_)) = (&a, &aaaa) {
        return Err(e.clone());
    }
    Ok([a, aaaa]
        .into_iter()
        .flatten()
        .flat_map(|ans| ans.answers)
        .filter_map(|r| match r.data {
            Rdata::Addr(ip) => Some((ip, r.ttl)),
            _ => None,
        })
        .collect())
}

/// One question to `server`, waiting at most `timeout` for its answer.
pub async fn query(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<Answer, DnsError> {
    let id = fastrand::u16(..);
    let msg = encode_query(id, name, qtype).ok_or(DnsError::Malformed)?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let io = |e: std::io::Error| DnsError::Io(e.to_string());
    let sock = UdpSocket::bind(local).await.map_err(io)?;
    sock.connect(server).await.map_err(io)?;
    sock.send(&msg).await.map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let wait = async {
        // Bounded: stray datagrams with other ids are skipped, at most 16.
        for _ in 0..16 {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return decode(&buf[..n]);
            }
        }
        Err(DnsError::Malformed)
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| DnsError::Timeout)?
}

pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(name.len() + 18);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(&mut m, name)?;
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    Some(m)
}

pub fn encode_name(m: &mut Vec<u8>, name: &str) -> Option<()> {
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..=63).contains(&l))?;
        m.push(len);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    Some(())
}

fn decode(msg: &[u8]) -> Result<Answer, DnsError> {
    let mut r = Reader { msg, pos: 0 };
    r.pos = 2;
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed);
    }
    let rcode = (flags & 0x000f) as u8;
    let (qd, an, ns, ar) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    match rcode {
        0 => {}
        3 => return Ok(Answer::default()),
        c => return Err(DnsError::Rcode(c)),
    }
    for _ in 0..qd {
        r.name()?;
        r.skip(4)?;
    }
    let mut out = Answer::default();
    for i in 0..(u32::from(an) + u32::from(ns) + u32::from(ar)) {
        let rec = match r.record() {
            Ok(rec) => rec,
            // A truncated answer: keep what was read.
            Err(_) if flags & 0x0200 != 0 => break,
            Err(e) => return Err(e),
        };
        if i < u32::from(an) {
            out.answers.push(rec);
        } else if i >= u32::from(an) + u32::from(ns) {
            out.additional.push(rec);
        }
    }
    Ok(out)
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], DnsError> {
        let end = self.pos.checked_add(n).ok_or(DnsError::Malformed)?;
        let b = self.msg.get(self.pos..end).ok_or(DnsError::Malformed)?;
        self.pos = end;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), DnsError> {
        self.bytes(n).map(|_| ())
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A possibly compressed name, lowercased, without the final dot.
    fn name(&mut self) -> Result<String, DnsError> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.pos;
        let mut resume = None;
        for _ in 0..128 {
            let len = *self.msg.get(pos).ok_or(DnsError::Malformed)?;
            match len {
                0 => {
                    self.pos = resume.unwrap_or(pos + 1);
                    return Ok(labels.join("."));
                }
                l if l & 0xc0 == 0xc0 => {
                    let lo = *self.msg.get(pos + 1).ok_or(DnsError::Malformed)?;
                    resume.get_or_insert(pos + 2);
                    pos = (usize::from(l & 0x3f) << 8) | usize::from(lo);
                }
                l if l < 64 => {
                    let s = self
                        .msg
                        .get(pos + 1..pos + 1 + usize::from(l))
                        .ok_or(DnsError::Malformed)?;
                    labels.push(String::from_utf8_lossy(s).to_ascii_lowercase());
                    pos += 1 + usize::from(l);
                }
                _ => return Err(DnsError::Malformed),
            }
        }
        Err(DnsError::Malformed)
    }

    fn record(&mut self) -> Result<Record, DnsError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let _class = self.u16()?;
        let ttl = self.u32()?;
        let len = usize::from(self.u16()?);
        let end = self.pos + len;
        let data = match (rtype, len) {
            (TYPE_A, 4) => {
                let b = self.bytes(4)?;
                Rdata::Addr(IpAddr::from([b[0], b[1], b[2], b[3]]))
            }
            (TYPE_AAAA, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(16)?);
                Rdata::Addr(IpAddr::from(a))
            }
            (TYPE_SRV, _) => Rdata::Srv {
                priority: self.u16()?,
                weight: self.u16()?,
                port: self.u16()?,
                target: self.name()?,
            },
            _ => Rdata::Other,
        };
        if end > self.msg.len() {
            return Err(DnsError::Malformed);
        }
        self.pos = end;
        Ok(Record { name, ttl, data })
    }
}

/// The first `nameserver` of `/etc/resolv.conf`, port 53.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|v| v.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_compressed_srv_answers_and_nxdomain() {
        let mut m = encode_query(7, "_http._tcp.svc", TYPE_SRV).expect("query");
        m[2] = 0x81; // QR + RD
        m[7] = 1; // ANCOUNT
        m[11] = 1; // ARCOUNT
                   // answer: name = pointer to the question name (offset 12)
        m.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 30]);
        let mut rdata = vec![0, 1, 0, 5, 0x1f, 0x90];
        encode_name(&mut rdata, "a.svc").expect("name");
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        encode_name(&mut m, "a.svc").expect("name");
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 127, 0, 0, 1]);
        let a = decode(&m).expect("decode");
        assert_eq!(a.answers[0].name, "_http._tcp.svc");
        assert_eq!(
            a.answers[0].data,
            Rdata::Srv {
                priority: 1,
                weight: 5,
                port: 8080,
                target: "a.svc".into()
            }
        );
        assert_eq!(
            a.additional[0].data,
            Rdata::Addr(IpAddr::from([127, 0, 0, 1]))
        );
        let mut nx = encode_query(7, "x", TYPE_A).expect("query");
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert!(decode(&nx).expect("nx").answers.is_empty());
        nx[3] = 0x82;
        assert_eq!(decode(&nx).expect_err("servfail"), DnsError::Rcode(2));
        assert!(decode(&[0, 1, 0x80]).is_err());
    }
}
