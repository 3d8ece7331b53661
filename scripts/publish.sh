#!/usr/bin/env bash
# Publishes the executables (Release, framework-dependent, ReadyToRun) into ./bin: bin/etcd (and bin/etcdctl,
# bin/etcdutl once those projects exist).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin"
mkdir -p "$out"
case "$(uname -m)" in
  x86_64) rid=linux-x64;; aarch64|arm64) rid=linux-arm64;; *) rid="";;
esac
# ReadyToRun (precompiled) code shortens start-up and the first requests; framework-dependent either way
r2r=(); [ -n "$rid" ] && r2r=(-r "$rid" --self-contained false -p:PublishReadyToRun=true)
for proj in Etcd:etcd Etcdctl:etcdctl Etcdutl:etcdutl; do
  dir=${proj%%:*}; exe=${proj##*:}
  [ -f "$root/src/$dir/$dir.csproj" ] || continue
  rm -rf "$out/.$exe"
  dotnet publish "$root/src/$dir/$dir.csproj" -c Release -o "$out/.$exe" --nologo -v q -p:UseAppHost=true "${r2r[@]}" >/dev/null
  # a small launcher keeps each tool's assemblies apart while giving it its plain name in bin/
  cat > "$out/$exe" <<SH
#!/usr/bin/env bash
exec "\$(dirname "\$(readlink -f "\$0")")/.$exe/$exe" "\$@"
SH
  chmod +x "$out/$exe"
  echo "published $out/$exe"
done
