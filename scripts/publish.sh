#!/usr/bin/env bash
# Publishes the executables (Release, framework-dependent) into ./bin: bin/etcd (and bin/etcdctl,
# bin/etcdutl once those projects exist).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin"
mkdir -p "$out"
for proj in Etcd:etcd Etcdctl:etcdctl Etcdutl:etcdutl; do
  dir=${proj%%:*}; exe=${proj##*:}
  [ -f "$root/src/$dir/$dir.csproj" ] || continue
  dotnet publish "$root/src/$dir/$dir.csproj" -c Release -o "$out/.$exe" --nologo -v q -p:UseAppHost=true >/dev/null
  # a small launcher keeps each tool's assemblies apart while giving it its plain name in bin/
  cat > "$out/$exe" <<SH
#!/usr/bin/env bash
exec "\$(dirname "\$(readlink -f "\$0")")/.$exe/$exe" "\$@"
SH
  chmod +x "$out/$exe"
  echo "published $out/$exe"
done
