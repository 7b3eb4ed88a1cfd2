#!/usr/bin/python3
"""Structural check of conf/kubernetes/*.yaml (no cluster needed).

Every object is checked field by field against the Kubernetes API types of Debian's
python3-kubernetes (unknown fields, wrong types and missing required fields fail, as a strict
API server would refuse them), then against what blobcached needs, with the values taken from
the daemon's own parser (blobcached --dump-config of the ConfigMap's file) and from the systemd
unit: the probe port is the listener's, every configured path is the same path on the host,
the models root is shared Bidirectional and holds every model mount, the NFS origin stays in
the container, /dev is the host's, the consumer binds the models root with HostToContainer and
gates on GET /models/NAME on the listener's port. Then each of a few mutations of the manifests
(one broken property each) must be caught, so that the check itself can fail.

Usage: kubernetes-manifests.py SRCDIR BLOBCACHED
"""
import copy
import os
import re
import subprocess
import sys
import tempfile

import yaml
import kubernetes.client as kc

KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Pod"): "V1Pod",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
}
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "date": str}


def check_type(value, type_name, where, errors):
    """value against the client's type string ('V1PodSpec', 'list[V1Volume]', 'dict(str, str)')."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.*)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{where}: a list expected, not {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_type(item, m.group(1), f"{where}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(([^,]*), (.*)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{where}: a map expected, not {type(value).__name__}")
            return
        for k, v in value.items():
            check_type(v, m.group(2), f"{where}.{k}", errors)
        return
    if type_name == "object":  # IntOrString, quantities
        if not isinstance(value, (str, int)):
            errors.append(f"{where}: a string or number expected")
        return
    if type_name in SCALARS:
        ok = isinstance(value, SCALARS[type_name])
        if type_name in ("int", "float") and isinstance(value, bool):
            ok = False
        if not ok:
            errors.append(f"{where}: {type_name} expected, not {value!r}")
        return
    cls = getattr(kc, type_name)
    if not isinstance(value, dict):
        errors.append(f"{where}: a {type_name} object expected")
        return
    by_json = {json: attr for attr, json in cls.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            errors.append(f"{where}.{key}: unknown field of {type_name}")
            continue
        check_type(v, cls.openapi_types[by_json[key]], f"{where}.{key}", errors)


def check_schema(doc, where, errors):
    kind = KINDS.get((doc.get("apiVersion"), doc.get("kind")))
    if not kind:
        errors.append(f"{where}: unexpected apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
        return
    before = len(errors)
    check_type(doc, kind, where, errors)
    if len(errors) == before:
        # The client's constructors refuse missing required fields (client-side validation).
        try:
            kc.ApiClient()._ApiClient__deserialize(doc, kind)
        except (ValueError, TypeError) as e:
            errors.append(f"{where}: {e}")


def dump_config(blobcached, text):
    """The effective configuration, from the daemon's own parser: {section: {key: value}}."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        check = subprocess.run([blobcached, "--check-config", "-c", f.name], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"FAIL: the ConfigMap's blobcached.conf: {check.stderr.strip()}")
        out = subprocess.run([blobcached, "--dump-config", "-c", f.name], capture_output=True, text=True,
                             check=True).stdout
    conf, section = {}, None
    for line in out.splitlines():
        if line.startswith("["):
            section = conf.setdefault(line.strip("[]"), {})
        elif " = " in line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            section[k] = v
    return conf


def unit_seconds(srcdir, key):
    text = open(os.path.join(srcdir, "conf/blobcached.service.in")).read()
    m = re.search(rf"^{key}=(\d+)s$", text, re.M)
    assert m, f"{key}= not found in conf/blobcached.service.in"
    return int(m.group(1))


def under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert m, value
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "m": 60 * n, "h": 3600 * n}[m.group(2)]


def check_properties(docs, blobcached, srcdir):
    """What blobcached needs from the manifests; returns the list of what is wrong."""
    errors = []
    err = errors.append
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    cms = [c for c in by_kind.get("ConfigMap", []) if "blobcached.conf" in (c.get("data") or {})]
    dss = by_kind.get("DaemonSet", [])
    pods = by_kind.get("Pod", [])
    if len(cms) != 1 or len(dss) != 1 or not pods:
        return [f"expected one ConfigMap with blobcached.conf, one DaemonSet, consumer Pods: "
                f"{len(cms)}, {len(dss)}, {len(pods)}"]
    cm, ds = cms[0], dss[0]
    conf = dump_config(blobcached, cm["data"]["blobcached.conf"])
    daemon, cache, origin = conf["daemon"], conf["cache"], conf["origin"]
    models = {s[len("model "):]: v for s, v in conf.items() if s.startswith("model ")}
    listen = daemon["probe_listen"]
    if listen == "off":
        return errors + ["probe_listen is off: the kubelet's probes need the listener"]
    listen_addr, listen_port = listen.rsplit(":", 1)
    listen_port = int(listen_port)

    spec = ds["spec"]
    pod = spec["template"]["spec"]
    if cm["metadata"].get("namespace") != ds["metadata"].get("namespace"):
        err("the ConfigMap and the DaemonSet are in different namespaces")
    if (spec.get("updateStrategy") or {}).get("type") != "OnDelete":
        err("DaemonSet updateStrategy: OnDelete expected (a new pod is a daemon restart that loses "
            "the device holder: the operator chooses when)")
    if pod.get("hostNetwork") is not True:
        err("DaemonSet: hostNetwork: true expected (probes and consumers at the node's address)")
    if pod.get("hostNetwork") and pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        err("DaemonSet: dnsPolicy ClusterFirstWithHostNet expected with hostNetwork")
    if pod.get("hostPID") is not True:
        err("DaemonSet: hostPID: true expected (the init container reads /proc/1/root)")
    stop = unit_seconds(srcdir, "TimeoutStopSec")
    if (pod.get("terminationGracePeriodSeconds") or 0) < stop:
        err(f"DaemonSet: terminationGracePeriodSeconds below the unit's TimeoutStopSec ({stop} s)")

    containers = pod["containers"]
    mains = [c for c in containers if "/usr/sbin/blobcached" in (c.get("command") or [])]
    if len(mains) != 1:
        return errors + ["DaemonSet: one container running /usr/sbin/blobcached expected"]
    main = mains[0]
    cmd = main["command"]
    conf_path = cmd[cmd.index("-c") + 1] if "-c" in cmd else "/etc/blobcached/blobcached.conf"
    if not (main.get("securityContext") or {}).get("privileged"):
        err("blobcached container: privileged expected (Bidirectional propagation requires it)")

    volumes = {v["name"]: v for v in pod.get("volumes") or []}

    def host_mounts(container):
        """mountPath -> (host path or None, mount) for each volumeMount."""
        out = {}
        for m in container.get("volumeMounts") or []:
            vol = volumes.get(m["name"])
            if vol is None:
                err(f"{container['name']}: volumeMount {m['name']} has no volume")
                continue
            out[m["mountPath"]] = ((vol.get("hostPath") or {}).get("path"), m, vol)
        return out

    mounts = host_mounts(main)

    def covering(path):
        """The deepest volumeMount at or above path."""
        best = None
        for mp in mounts:
            if under(path, mp) and (best is None or len(mp) > len(best)):
                best = mp
        return best

    # The configuration file: the ConfigMap's key at the path the daemon reads.
    cdir, cname = os.path.split(conf_path)
    mp = mounts.get(cdir)
    if not mp or (mp[2].get("configMap") or {}).get("name") != cm["metadata"]["name"]:
        err(f"blobcached container: {cdir} is not the ConfigMap {cm['metadata']['name']}")
    elif cname not in cm["data"]:
        err(f"the ConfigMap has no key {cname} (the daemon reads {conf_path})")

    # Every path of the configuration is the same path on the host.
    for what, path in (("[cache] dir", cache["dir"]), ("[daemon] state_dir", daemon["state_dir"]),
                       ("[daemon] catalogue", daemon["catalogue"]), ("[daemon] run_dir", daemon["run_dir"])):
        mp = covering(path)
        if mp is None or mounts[mp][0] is None:
            err(f"{what} = {path}: no hostPath volume mounted there")
        elif mounts[mp][0] != mp:
            err(f"{what} = {path}: mounted from the host's {mounts[mp][0]}, not the same path")
    mp = covering(cache["dir"])
    if mp and mounts[mp][1].get("mountPropagation") != "HostToContainer":
        err(f"[cache] dir {cache['dir']}: mountPropagation HostToContainer expected (a host "
            "umount must see the volume in use)")

    # The models root: one Bidirectional hostPath holding every model mount.
    bidir = [mp for mp, (host, m, _) in mounts.items() if m.get("mountPropagation") == "Bidirectional"]
    if len(bidir) != 1:
        err(f"blobcached container: one Bidirectional volumeMount expected, found {bidir}")
        models_root = None
    else:
        models_root = bidir[0]
        if mounts[models_root][0] != models_root:
            err(f"models root {models_root}: mounted from the host's {mounts[models_root][0]}, not the same path")
    if not models:
        err("the configuration has no [model NAME] with a mount")
    for name, sect in models.items():
        path = sect.get("mount")
        if not path:
            continue
        if models_root is None or not under(path, models_root) or path == models_root:
            err(f"[model {name}] mount = {path}: not below the Bidirectional models root {models_root}")
    # The NFS origin is mounted in the container's own namespace: never on a host path.
    if origin.get("nfs") and origin.get("path"):
        mp = covering(origin["path"])
        if mp is not None:
            err(f"[origin] path = {origin['path']} (NFS, mounted by the daemon) lies under the volume "
                f"mounted at {mp}: it belongs in the container's own filesystem")

    # Devices: the host's /dev (ublk nodes appear after the container starts).
    if mounts.get("/dev", (None,))[0] != "/dev":
        err("blobcached container: the host's /dev (hostPath /dev at /dev) expected")

    # Probes on the listener's port; the kubelet connects to the pod IP (the node's address).
    probes = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    ports = {p.get("name"): p["containerPort"] for p in main.get("ports") or []}
    for probe, path in probes.items():
        get = ((main.get(probe) or {}).get("httpGet")) or {}
        port = get.get("port")
        port = ports.get(port, port)
        if get.get("path") != path:
            err(f"{probe}: httpGet {path} expected, not {get.get('path')}")
        if port != listen_port:
            err(f"{probe}: port {port}, but probe_listen is {listen}")
        host = get.get("host")
        if listen_addr != "0.0.0.0" and host != listen_addr:
            err(f"{probe}: the kubelet connects to {host or 'the pod IP'}, the daemon listens on {listen_addr}")
    if listen_port not in ports.values():
        err(f"blobcached container: no containerPort {listen_port} (probe_listen {listen})")
    live = main.get("livenessProbe") or {}
    watchdog = unit_seconds(srcdir, "WatchdogSec")
    if live.get("periodSeconds", 10) * live.get("failureThreshold", 3) < watchdog:
        err(f"livenessProbe: restarts sooner than the unit's WatchdogSec ({watchdog} s)")

    # The init container: the same configuration, the cache volume, the host's root.
    inits = pod.get("initContainers") or []
    check = [c for c in inits if "--check-config" in "\n".join(c.get("command") or [])]
    if not check:
        err("DaemonSet: an init container running blobcached --check-config expected")
    else:
        c = check[0]
        script = "\n".join(c.get("command") or [])
        imounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        if conf_path not in script or cdir not in imounts:
            err(f"init container: does not check {conf_path}")
        if "/proc/1/root" not in script or covering(cache["dir"]) not in imounts:
            err("init container: does not compare the cache directory with the host's root")

    # Consumers: the models root with HostToContainer, the gate on the listener's port.
    for p in pods:
        ps = p["spec"]
        name = p["metadata"]["name"]
        if ps.get("nodeSelector") != pod.get("nodeSelector"):
            err(f"Pod {name}: nodeSelector differs from the DaemonSet's")
        pvols = {v["name"]: v for v in ps.get("volumes") or []}
        seen = False
        for c in ps["containers"]:
            for m in c.get("volumeMounts") or []:
                host = (pvols.get(m["name"], {}).get("hostPath") or {}).get("path")
                if host is None:
                    continue
                if models_root and host == models_root:
                    seen = True
                    if m.get("mountPropagation") != "HostToContainer":
                        err(f"Pod {name}: {host} needs mountPropagation HostToContainer")
                    if m["mountPath"] != models_root:
                        err(f"Pod {name}: {host} mounted at {m['mountPath']}, not at {models_root}")
                elif models_root and under(host, models_root):
                    err(f"Pod {name}: binds {host}, below the models root: bind {models_root} "
                        "(a model's mount may be replaced)")
        if not seen:
            err(f"Pod {name}: no hostPath {models_root} mount")
        read = "\n".join(x for c in ps["containers"] for x in c.get("command") or [])
        gate = "\n".join(x for c in ps.get("initContainers") or [] for x in c.get("command") or [])
        for model, sect in models.items():
            if sect.get("mount") and sect["mount"] in read:
                url = f":{listen_port}/models/{model}"
                if url not in gate:
                    err(f"Pod {name}: reads {sect['mount']} without waiting for GET /models/{model} on "
                        f"port {listen_port}")
                break
        else:
            err(f"Pod {name}: reads none of the configured model mounts")
        envs = {e["name"]: e for c in ps.get("initContainers") or [] for e in c.get("env") or []}
        if "$NODE_IP" in gate and (((envs.get("NODE_IP") or {}).get("valueFrom") or {}).get("fieldRef") or
                                   {}).get("fieldPath") != "status.hostIP":
            err(f"Pod {name}: NODE_IP is not status.hostIP")
    return errors


def run_host_check(docs, blobcached):
    """Run the DaemonSet's init container script here, with this tree's blobcached, this
    process's root in place of the host's (/proc/1/root/) and a modprobe that only records its
    arguments: a cache directory on the root filesystem is refused with exit 78 and the fix,
    unless allow_root_fs = yes; another filesystem passes and loads the modules."""
    ds = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    init = next(c for c in ds["initContainers"] if "--check-config" in "\n".join(c["command"]))
    cmd = init["command"]
    assert cmd[:2] == ["/bin/sh", "-c"], cmd
    assert "/proc/1/root/" in cmd[2], "the init container no longer compares with /proc/1/root/"
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(f"{tmp}/bin")
        with open(f"{tmp}/bin/modprobe", "w") as f:
            f.write(f'#!/bin/sh\necho "$@" >>{tmp}/modprobe.log\n')
        os.chmod(f"{tmp}/bin/modprobe", 0o755)
        env = dict(os.environ, PATH=f"{tmp}/bin:/usr/bin:/bin")
        # This process's root stands for the host's (/proc/1/root/ in the pod).
        cases = [("/", "no", 78), ("/proc", "no", 0), ("/", "yes", 0)]
        for cache_dir, allow, want in cases:
            text = re.sub(r"(?m)^dir = .*$", f"dir = {cache_dir}\nallow_root_fs = {allow}",
                          cm["data"]["blobcached.conf"])
            with open(f"{tmp}/blobcached.conf", "w") as f:
                f.write(text)
            script = cmd[2].replace("/usr/sbin/blobcached", blobcached).replace(
                "/etc/blobcached/blobcached.conf", f"{tmp}/blobcached.conf").replace("/proc/1/root/", "/")
            if os.path.exists(f"{tmp}/modprobe.log"):
                os.unlink(f"{tmp}/modprobe.log")
            r = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
            loaded = open(f"{tmp}/modprobe.log").read().split() if os.path.exists(f"{tmp}/modprobe.log") else []
            what = f"init container, cache dir {cache_dir}, allow_root_fs = {allow}"
            ok = r.returncode == want
            if want == 78:
                ok = ok and "on the host's root filesystem" in r.stderr and "mount the dedicated cache volume" \
                    in r.stderr and not loaded
            else:
                ok = ok and loaded == ["cachefiles", "erofs", "ublk_drv"]
            if ok:
                print(f"PASS: {what}: exit {r.returncode}" + (f", modprobe {' '.join(loaded)}" if loaded else
                                                                f": {r.stderr.strip()}"))
            else:
                failures += 1
                print(f"FAIL: {what}: exit {r.returncode} (want {want}), modprobe {loaded}, stderr: {r.stderr}")
    return failures


def load(srcdir):
    docs = []
    kdir = os.path.join(srcdir, "conf/kubernetes")
    for f in sorted(os.listdir(kdir)):
        if f.endswith(".yaml"):
            for i, d in enumerate(yaml.safe_load_all(open(os.path.join(kdir, f)))):
                if d is not None:
                    docs.append((f"{f}#{i}", d))
    return docs


def main():
    srcdir, blobcached = sys.argv[1], sys.argv[2]
    named = load(srcdir)
    docs = [d for _, d in named]
    errors = []
    for where, d in named:
        check_schema(d, where, errors)
    errors += check_properties(docs, blobcached, srcdir)
    for e in errors:
        print("FAIL:", e)
    if errors:
        return 1
    print(f"PASS: {len(docs)} objects in conf/kubernetes/*.yaml: API schema and blobcached's needs")
    failures = run_host_check(docs, blobcached)

    # The check must catch each of these.
    def ds(ds_docs):
        return next(d for d in ds_docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]

    def main_c(ds_docs):
        return next(c for c in ds(ds_docs)["containers"] if "/usr/sbin/blobcached" in c["command"])

    def mount(c, path):
        return next(m for m in c["volumeMounts"] if m["mountPath"] == path)

    def consumer(ds_docs):
        return next(d for d in ds_docs if d["kind"] == "Pod")["spec"]

    def conf_set(ds_docs, old, new):
        cm = next(d for d in ds_docs if d["kind"] == "ConfigMap")
        assert old in cm["data"]["blobcached.conf"], old
        cm["data"]["blobcached.conf"] = cm["data"]["blobcached.conf"].replace(old, new)

    mutations = {
        "probe port differs from probe_listen": lambda d: conf_set(d, "0.0.0.0:9464", "0.0.0.0:9465"),
        "listener on loopback only": lambda d: conf_set(d, "0.0.0.0:9464", "127.0.0.1:9464"),
        "model mount outside the models root": lambda d: conf_set(d, "mount = /models/llama-7b",
                                                                 "mount = /srv/llama-7b"),
        "cache dir not on a host path": lambda d: conf_set(d, "dir = /var/cache/blobcached",
                                                           "dir = /var/cache/other"),
        "NFS origin on the models root": lambda d: conf_set(d, "path = /srv/blobcache-origin",
                                                            "path = /models/origin"),
        "models root not Bidirectional": lambda d: mount(main_c(d), "/models").update(
            mountPropagation="HostToContainer"),
        "liveness probe on /readyz": lambda d: main_c(d)["livenessProbe"]["httpGet"].update(path="/readyz"),
        "no host /dev": lambda d: main_c(d)["volumeMounts"].remove(mount(main_c(d), "/dev")),
        "RollingUpdate": lambda d: next(x for x in d if x["kind"] == "DaemonSet")["spec"].update(
            updateStrategy={"type": "RollingUpdate"}),
        "consumer without HostToContainer": lambda d: mount(consumer(d)["containers"][0], "/models").pop(
            "mountPropagation"),
        "misspelt field": lambda d: mount(main_c(d), "/models").update(
            mountPropogation=mount(main_c(d), "/models").pop("mountPropagation")),
        "port as a list": lambda d: main_c(d)["readinessProbe"]["httpGet"].update(port=[9464]),
        "container without a name": lambda d: main_c(d).pop("name"),
        "cache volume without HostToContainer": lambda d: mount(main_c(d), "/var/cache/blobcached").pop(
            "mountPropagation"),
        "no hostPID": lambda d: ds(d).pop("hostPID"),
    }
    missed = []
    for what, mutate in mutations.items():
        m_docs = copy.deepcopy(docs)
        mutate(m_docs)
        errs = []
        for i, d in enumerate(m_docs):
            check_schema(d, f"doc{i}", errs)
        if not errs:
            errs = check_properties(m_docs, blobcached, srcdir)
        if errs:
            print(f"PASS: caught ({what}): {errs[0]}")
        else:
            missed.append(what)
    for what in missed:
        print(f"FAIL: not caught: {what}")
    return 1 if missed or failures else 0


if __name__ == "__main__":
    sys.exit(main())
