//! Bundles built with real keys pass; every kind of tampering is named.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libp2p_identity::Keypair;
use proofs::export::{Bundle, BundleEpoch, EpochJson, ReceiptJson, ReceiptWithProof};
use proofs::verify::{VerifyError, verify_bundle};
use proofs::{Receipt, SignedReceipt, close_epoch};

const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

fn receipt(provider: &Keypair, receiver: &Keypair, epoch: u64, seq: u64, bytes: u64) -> Receipt {
    Receipt {
        v: 1,
        cid: CID.into(),
        seq,
        bytes,
        epoch,
        video: "v1".into(),
        time_ms: 1_700_000_000_000 + seq,
        provider: provider.public().to_peer_id().to_string(),
        receiver: receiver.public().to_peer_id().to_string(),
    }
}

fn bundle(provider: &Keypair, receipts: Vec<SignedReceipt>) -> Bundle {
    let closed = close_epoch(provider, 7, 1000, 2000, &receipts);
    let receipts = receipts
        .iter()
        .map(|r| ReceiptWithProof {
            receipt: ReceiptJson::from(r),
            proof: closed.proof(&r.hash()),
        })
        .collect();
    Bundle {
        v: 1,
        provider: provider.public().to_peer_id().to_string(),
        epochs: vec![BundleEpoch {
            root: EpochJson::from(&closed.root),
            receipts,
        }],
    }
}

fn setup() -> (Keypair, Keypair, Bundle) {
    let provider = Keypair::generate_ed25519();
    let receiver = Keypair::generate_ed25519();
    let receipts = (1..=13)
        .map(|seq| receipt(&provider, &receiver, 7, seq, 1000 + seq).sign(&receiver))
        .collect();
    let b = bundle(&provider, receipts);
    (provider, receiver, b)
}

fn problem(b: &Bundle) -> String {
    verify_bundle(b).unwrap_err().to_string()
}

#[test]
fn an_honest_bundle_passes() {
    let (_, _, b) = setup();
    let s = verify_bundle(&b).unwrap();
    assert_eq!(s.receipts, 13);
    assert_eq!(s.bytes, (1..=13).map(|s| 1000 + s).sum::<u64>());
    // It survives a JSON round trip, as files and HTTP carry it.
    let again: Bundle = serde_json::from_slice(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(verify_bundle(&again).unwrap(), s);
}

#[test]
fn a_forged_receipt_is_refused() {
    let (provider, receiver, mut b) = setup();
    // Signed by someone else but naming the real receiver.
    let forger = Keypair::generate_ed25519();
    let forged = receipt(&provider, &receiver, 7, 99, 500).sign(&forger);
    let mut receipts: Vec<SignedReceipt> = b.epochs[0]
        .receipts
        .iter()
        .map(|r| signed(&r.receipt))
        .collect();
    receipts.push(forged);
    b = bundle(&provider, receipts);
    assert!(
        problem(&b).contains("signature does not match"),
        "{}",
        problem(&b)
    );
}

fn signed(j: &ReceiptJson) -> SignedReceipt {
    SignedReceipt::open(&STANDARD.decode(&j.signed).unwrap()).unwrap()
}

#[test]
fn tampered_fields_and_bytes_are_refused() {
    let (_, _, b) = setup();
    // A field edited in the JSON.
    let mut t = b.clone();
    t.epochs[0].receipts[3].receipt.bytes += 1;
    assert!(problem(&t).contains("fields differ"), "{}", problem(&t));
    // A byte flipped inside the signed receipt.
    let mut t = b.clone();
    let mut raw = STANDARD
        .decode(&t.epochs[0].receipts[2].receipt.signed)
        .unwrap();
    let n = raw.len();
    raw[n - 3] ^= 1;
    t.epochs[0].receipts[2].receipt.signed = STANDARD.encode(raw);
    assert!(matches!(
        verify_bundle(&t),
        Err(VerifyError::Receipt { .. })
    ));
    // A receipt dropped from the epoch.
    let mut t = b.clone();
    t.epochs[0].receipts.pop();
    assert!(problem(&t).contains("signs 13 receipts"), "{}", problem(&t));
    // A root re-signed by another key.
    let mut t = b.clone();
    let other = Keypair::generate_ed25519();
    let receipts: Vec<_> = t.epochs[0]
        .receipts
        .iter()
        .map(|r| signed(&r.receipt))
        .collect();
    t.epochs[0].root = EpochJson::from(&close_epoch(&other, 7, 1000, 2000, &receipts).root);
    assert!(
        problem(&t).contains("not the bundle's provider"),
        "{}",
        problem(&t)
    );
    // A proof for the wrong leaf.
    let mut t = b.clone();
    let p = t.epochs[0].receipts[1].proof.clone();
    t.epochs[0].receipts[0].proof = p;
    assert!(
        problem(&t).contains("inclusion proof fails"),
        "{}",
        problem(&t)
    );
}

#[test]
fn replayed_and_overclaiming_receipts_are_refused() {
    let (provider, receiver, b) = setup();
    let mut receipts: Vec<SignedReceipt> = b.epochs[0]
        .receipts
        .iter()
        .map(|r| signed(&r.receipt))
        .collect();
    // The same seq signed again for another block.
    let mut again = receipt(&provider, &receiver, 7, 5, 4242);
    again.time_ms += 1;
    receipts.push(again.sign(&receiver));
    assert!(problem(&bundle(&provider, receipts)).contains("replays seq 5"));

    let huge = receipt(&provider, &receiver, 7, 100, proofs::MAX_BLOCK_BYTES + 1).sign(&receiver);
    assert!(
        SignedReceipt::open(&huge.bytes)
            .unwrap_err()
            .to_string()
            .contains("more than one block")
    );
}

#[test]
fn non_canonical_encodings_are_refused() {
    let (provider, receiver, _) = setup();
    let r = receipt(&provider, &receiver, 7, 1, 10).sign(&receiver);
    assert!(SignedReceipt::open(&r.bytes).is_ok());
    let mut longer = r.bytes.clone();
    longer.push(0);
    assert!(SignedReceipt::open(&longer).is_err());
}
