# Running the containers of the image with runc — sourced by rcS and rc.shutdown.
#
# Each container is a directory (containers/onboot/NNN-name, containers/services/name,
# containers/onshutdown/NNN-name) holding an OCI bundle: config.json + rootfs, which runc reads
# as is, and optionally LinuxKit's runtime.json, which we apply around runc (read with jq):
#   mounts     [{type, source, destination, options}]  mounted before the container starts;
#              a relative destination is relative to the bundle's rootfs
#   mkdir      ["/var/lib/docker", ...]                 directories made before it starts
#   cgroups    ["podruntime", ...]                      cgroups made under /sys/fs/cgroup
#   interfaces [{name, add, peer, createInRoot}]        links made/moved into its netns,
#   bindNS     {net: "/run/netns/x", ...}               its namespaces bind-mounted to paths;
#              these two need the container's pid before it runs, so such containers go
#              through runc create / start (their exit status is then not known); all others
#              through `runc run` in the foreground.
# The runc container id is the directory name. runc keeps its state under /run/runc.

say() { echo "$*" >/dev/console 2>/dev/null || echo "$*"; }

# Fields of runtime.json on one line each, separated by the unit separator (fields may be empty).
US=$(printf '\037')
runtime_lines() { # DIR JQ-FILTER
	[ -f "$1/runtime.json" ] || return 0
	jq -r "$2" "$1/runtime.json"
}

prepare_filesystem() { # DIR
	local dir=$1 type src dest opts c o data prop
	runtime_lines "$dir" '.mounts[]? | [.type // "", .source // "", .destination, ((.options // []) | join(","))] | join("\u001f")' |
		while IFS=$US read -r type src dest opts; do
			case $dest in /*) ;; *) dest=$dir/rootfs/$dest ;; esac
			mkdir -p "$dest"
			# Propagation options become mount --make-*; overlay upper and work dirs must exist.
			data= prop=
			for o in $(echo "$opts" | tr ',' ' '); do
				case $o in
				shared | rshared | private | rprivate | slave | rslave | unbindable | runbindable) prop="$prop $o" ;;
				upperdir=* | workdir=*) mkdir -p "${o#*=}" && data=${data:+$data,}$o ;;
				*) data=${data:+$data,}$o ;;
				esac
			done
			if [ -z "$type" ] && [ -z "$src" ]; then
				# No file system, only flags for what is mounted there already, e.g. LinuxKit's
				# {"destination": ".../tmp", "options": ["remount", "private"]}.
				[ -z "$data" ] || mount -o "$data" "$dest" || return 1
			else
				mount -t "${type:-none}" ${data:+-o "$data"} "${src:-none}" "$dest" || return 1
			fi
			for o in $prop; do mount --make-"$o" "$dest" || return 1; done
		done || return 1
	for d in $(runtime_lines "$dir" '.mkdir[]?'); do
		case $d in /*) mkdir -p "$d" ;; *) mkdir -p "$dir/rootfs/$d" ;; esac
	done
	for c in $(runtime_lines "$dir" '.cgroups[]?'); do
		mkdir -p "/sys/fs/cgroup/$c"
	done
}

needs_pid_before_start() { # DIR
	[ -f "$1/runtime.json" ] && jq -e '((.interfaces // []) | length) + ([(.bindNS // {})[] | select(. != "")] | length) > 0' "$1/runtime.json" >/dev/null
}

prepare_process() { # DIR PID
	local dir=$1 pid=$2 name add peer inroot ns path
	runtime_lines "$dir" '.interfaces[]? | [.name, .add // "", .peer // "", (.createInRoot // false | tostring)] | join("\u001f")' |
		while IFS=$US read -r name add peer inroot; do
			[ -n "$peer" ] && [ -z "$add" ] && add=veth
			case $add in
			veth) ip link add "$name" type veth peer name "$peer" || return 1 ;;
			'') ;; # an existing link: just move it
			*)
				if [ "$inroot" = true ]; then
					ip link add "$name" type "$add" || return 1
				else
					nsenter -t "$pid" -n ip link add "$name" type "$add" || return 1
					continue
				fi
				;;
			esac
			ip link set "$name" netns "$pid" || return 1
		done || return 1
	runtime_lines "$dir" '.bindNS // {} | to_entries[] | "\(.key) \(.value)"' |
		while read -r ns path; do
			[ -n "$path" ] || continue
			mkdir -p "${path%/*}" && touch "$path" && mount --bind "/proc/$pid/ns/$ns" "$path" || return 1
		done
}

# Runs one container to its end; returns its exit status (0 when it cannot be known).
run_container() { # DIR
	local dir=$1 id=${1##*/} pid
	prepare_filesystem "$dir" || { echo "$id: runtime.json mounts/mkdir/cgroups failed"; return 125; }
	if ! needs_pid_before_start "$dir"; then
		runc run --bundle "$dir" "$id"
		return
	fi
	runc create --bundle "$dir" --pid-file "/run/stele/$id.pid" "$id" || return 125
	pid=$(cat "/run/stele/$id.pid")
	prepare_process "$dir" "$pid" || { echo "$id: runtime.json interfaces/bindNS failed"; runc delete -f "$id"; return 125; }
	runc start "$id" || return 125
	# Its process is not our child (pid 1 reaps it): poll until it is gone.
	while kill -0 "$pid" 2>/dev/null; do sleep 1; done
	return 0
}

# onboot and onshutdown: one at a time, output to the console and /var/log/<id>.log.
run_onboot() { # DIR
	local id=${1##*/} rc
	say "stele init: $id: start"
	set -o pipefail
	run_container "$1" 2>&1 </dev/null | tee -a "/var/log/$id.log" >/dev/console
	rc=$?
	set +o pipefail
	runc delete -f "$id" >/dev/null 2>&1
	say "stele init: $id: exit $rc"
	return $rc
}

# services: restarted when they fail (1 s back-off doubling to 30 s, reset after a minute of
# running); a service that exits 0 is done. Output to /var/log/<id>.log.
supervise() { # DIR
	local dir=$1 id=${1##*/} delay=1 started rc
	while [ ! -e /run/stele/shutdown ]; do
		say "stele init: service $id: start"
		started=$(date +%s)
		run_container "$dir" >>"/var/log/$id.log" 2>&1 </dev/null
		rc=$?
		runc delete -f "$id" >/dev/null 2>&1
		[ -e /run/stele/shutdown ] && break
		if [ "$rc" = 0 ]; then
			say "stele init: service $id: exit 0, done"
			break
		fi
		[ $(($(date +%s) - started)) -ge 60 ] && delay=1
		say "stele init: service $id: exit $rc, restart in ${delay}s; its log ends:"
		tail -n 3 "/var/log/$id.log" | sed "s/^/  $id: /" >/dev/console 2>/dev/null
		sleep "$delay"
		delay=$((delay * 2))
		[ "$delay" -gt 30 ] && delay=30
	done
}

running_containers() { runc list -f json 2>/dev/null | jq -r '.[]? | select(.status == "running") | .id'; }

# TERM to every running container, KILL to those still running after GRACE seconds.
stop_services() { # GRACE
	local left=$1 id
	for id in $(running_containers); do runc kill "$id" TERM 2>/dev/null; done
	while [ "$left" -gt 0 ] && [ -n "$(running_containers)" ]; do
		sleep 1
		left=$((left - 1))
	done
	for id in $(running_containers); do
		say "stele init: $id did not stop, killing it"
		runc kill "$id" KILL 2>/dev/null
	done
}
