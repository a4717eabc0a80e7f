//! Patching an order request allocates nothing once the templates are built.

use pinion_core::{Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::sign::Signer;
use pinion_gateway::binance::template::{Signing, SlotValues, SymbolContext};
use pinion_strategy::{ClientOrderId, OrderSide, OrderType, TimeInForce};
use pinion_testkit::alloc::thread_allocations;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

#[test]
fn patched_orders_allocate_nothing_in_every_signing_mode() {
    let hmac = Signer::hmac(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    let ed = Signer::ed25519_pem(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    for (signing, signer) in [
        (Signing::LoggedOn, None),
        (
            Signing::PerRequest {
                api_key: "k".into(),
            },
            Some(&hmac),
        ),
        (
            Signing::PerRequest {
                api_key: "k".into(),
            },
            Some(&ed),
        ),
    ] {
        let ctx = SymbolContext {
            symbol: "BTCUSDT".into(),
            price_decimals: 2,
            qty_decimals: 5,
            recv_window: None,
            stp_mode: None,
            signing,
        };
        let mut t = ctx
            .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
            .unwrap();
        let mut id = [0u8; CLIENT_ID_LEN];
        let mut check = 0u64;
        // Warm-up.
        codec.encode(ClientOrderId(0), &mut id);
        let v = SlotValues {
            client_id: &id,
            ..SlotValues::default()
        };
        t.write(&v, signer).unwrap();
        let before = thread_allocations();
        for i in 0..1_000u64 {
            codec.encode(ClientOrderId(i), &mut id);
            let v = SlotValues {
                request_id: i,
                price: Px(6_000_000 + i as i64),
                qty: Qty(100 + i as i64),
                client_id: &id,
                timestamp_ms: 1_764_921_600_000 + i,
                ..SlotValues::default()
            };
            let out = t.write(&v, signer).unwrap();
            check = check.wrapping_add(u64::from(out[out.len() / 2]));
        }
        assert_eq!(
            thread_allocations() - before,
            0,
            "{:?}",
            signer.map(Signer::kind)
        );
        assert_ne!(check, 0);
    }
}
