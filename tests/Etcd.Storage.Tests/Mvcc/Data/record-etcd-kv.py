# Records random KV requests and etcd's responses through the JSON gateway of a real etcd 3.4.23.
# usage: [LEASES=100,200] python3 record-etcd-kv.py SEED COUNT OUT.json   (needs /usr/bin/etcd; ports 23792/23802)
# Replayed by EtcdRecordedReplayTests.
import json, random, base64, subprocess, time, urllib.request, sys, os, shutil
seed = int(sys.argv[1]); n = int(sys.argv[2]); out = sys.argv[3]
rng = random.Random(seed)
d = f"/tmp/oracle-mvcc/d{seed}"
shutil.rmtree(d, ignore_errors=True)
p = subprocess.Popen(["/usr/bin/etcd","--data-dir",d,"--listen-client-urls","http://127.0.0.1:23792","--advertise-client-urls","http://127.0.0.1:23792","--listen-peer-urls","http://127.0.0.1:23802","--initial-advertise-peer-urls","http://127.0.0.1:23802","--initial-cluster","default=http://127.0.0.1:23802"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def call(path, body):
    req = urllib.request.Request("http://127.0.0.1:23792"+path, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req) as r: return json.loads(r.read())
    except urllib.error.HTTPError as e: return json.loads(e.read())
for i in range(100):
    try:
        call("/v3/kv/range", {"key": "YQ=="}); break
    except Exception: time.sleep(0.2)
b = lambda s: base64.b64encode(s.encode()).decode()
keys = ["a","b","c","d","e","f","g","ab","ba"]
rev = [1]
def key(): return rng.choice(keys)
def rng_end(k):
    c = rng.randrange(4)
    if c == 0: return None
    if c == 1: return "\0"
    return rng.choice(keys)
def enc_end(e):
    if e is None: return {}
    return {"range_end": base64.b64encode(e.encode()).decode()}
def range_req():
    k = key(); r = {"key": b(k), **enc_end(rng_end(k))}
    if rng.random() < 0.4: r["limit"] = rng.randrange(0, 5)
    if rng.random() < 0.3: r["revision"] = rng.randrange(0, rev[0] + 2)
    if rng.random() < 0.4: r["sort_order"] = rng.choice(["NONE","ASCEND","DESCEND"])
    if rng.random() < 0.4: r["sort_target"] = rng.choice(["KEY","VERSION","CREATE","MOD","VALUE"])
    if rng.random() < 0.15: r["keys_only"] = True
    if rng.random() < 0.1: r["count_only"] = True
    for f in ["min_mod_revision","max_mod_revision","min_create_revision","max_create_revision"]:
        if rng.random() < 0.1: r[f] = rng.randrange(0, rev[0] + 1)
    return r
LEASES = [int(x) for x in os.environ.get("LEASES", "").split(",") if x]
def put_req():
    r = {"key": b(key()), "value": b(rng.choice(["x","y","z","","xx"]))}
    if rng.random() < 0.3: r["prev_kv"] = True
    if rng.random() < 0.1: r["ignore_value"] = True; r.pop("value")
    if LEASES and rng.random() < 0.3: r["lease"] = rng.choice(LEASES + [999])
    elif LEASES and rng.random() < 0.1: r["ignore_lease"] = True
    return r
def del_req():
    k = key(); r = {"key": b(k), **enc_end(rng_end(k))}
    if rng.random() < 0.4: r["prev_kv"] = True
    return r
def compare():
    k = key(); c = {"key": b(k), "result": rng.choice(["EQUAL","GREATER","LESS","NOT_EQUAL"])}
    t = rng.choice(["VERSION","CREATE","MOD","VALUE","LEASE"]); c["target"] = t
    if t == "VALUE": c["value"] = b(rng.choice(["x","y","z",""]))
    elif t == "VERSION": c["version"] = rng.randrange(0,4)
    elif t == "CREATE": c["create_revision"] = rng.randrange(0, rev[0]+1)
    elif t == "MOD": c["mod_revision"] = rng.randrange(0, rev[0]+1)
    else: c["lease"] = rng.choice([0] + LEASES)
    if rng.random() < 0.2: c.update(enc_end(rng_end(k)) if rng.random()<0.5 else {"range_end": b("z")})
    return c
def ops(depth):
    res = []
    for _ in range(rng.randrange(0, 4)):
        x = rng.random()
        if x < 0.35: res.append({"request_put": put_req()})
        elif x < 0.55: res.append({"request_delete_range": del_req()})
        elif x < 0.85 or depth > 1: res.append({"request_range": range_req()})
        else: res.append({"request_txn": txn_req(depth+1)})
    return res
def txn_req(depth=0):
    return {"compare": [compare() for _ in range(rng.randrange(0,3))], "success": ops(depth), "failure": ops(depth)}
log = []
for lid in LEASES:
    body = {"TTL": 3600, "ID": lid}
    log.append({"path": "/v3/lease/grant", "req": body, "resp": call("/v3/lease/grant", body)})
for i in range(n):
    x = rng.random()
    if x < 0.3: path, body = "/v3/kv/put", put_req()
    elif x < 0.4: path, body = "/v3/kv/deleterange", del_req()
    elif x < 0.7: path, body = "/v3/kv/range", range_req()
    elif x < 0.97: path, body = "/v3/kv/txn", txn_req()
    else: path, body = "/v3/kv/compaction", {"revision": rng.randrange(0, rev[0]+2)}
    resp = call(path, body)
    if "header" in resp: rev[0] = int(resp["header"]["revision"])
    log.append({"path": path, "req": body, "resp": resp})
hk = call("/v3/maintenance/hash", {})
p.terminate(); p.wait()
json.dump(log, open(out, "w"))
print(len(log), rev[0])
