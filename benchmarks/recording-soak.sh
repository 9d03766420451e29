#!/bin/bash
# Full-scale check of recording (issue 5, acceptance 4 and 6), by hand: one simulated camera recorded in
# 60 s segments to s3rver, a 2-minute s3rver outage (backlog grows, then drains), an ffmpeg SIGKILL
# mid-segment (a gap), then a 10-minute export across the gap (duration = recorded time, Range 206).
# Needs Postgres on 127.0.0.1:5432 (trust) and ffmpeg; takes about 11 minutes; log in $SOAK_DIR/soak.log.
set -u
cd "$(dirname "$0")/.."
N=node_modules/node/bin/node
W=${SOAK_DIR:-/tmp/vms-soak}; rm -rf $W; mkdir -p $W/s3 $W/data $W/sim; chmod 755 $W/data
log() { echo "$(date +%T) $*" | tee -a $W/soak.log; }
psql -h 127.0.0.1 -U postgres -qc "drop database if exists vms_soak" -c "create database vms_soak" >/dev/null
s3() { NODE_OPTIONS=--openssl-legacy-provider setsid $N node_modules/s3rver/bin/s3rver.js --directory $W/s3 --address 127.0.0.1 --port 18900 --silent --configure-bucket soak > /dev/null 2>&1 & echo $! > $W/s3.pid; }
s3; sleep 2
$N runtime/bin/vms.ts simulate --cameras 1 --port 18654 --data-dir $W/sim > $W/sim.log 2>&1 &
echo $! > $W/simpid
VMS_DATA_DIR=$W/data VMS_HTTP_PORT=18099 VMS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vms_soak \
VMS_S3_ENDPOINT=http://127.0.0.1:18900 VMS_S3_BUCKET=soak VMS_S3_ACCESS_KEY_ID=S3RVER VMS_S3_SECRET_ACCESS_KEY=S3RVER VMS_S3_FORCE_PATH_STYLE=true \
VMS_LOG_LEVEL=warn $N runtime/bin/vms.ts start > $W/node.log 2>&1 &
echo $! > $W/node.pid
until curl -sf localhost:18099/health/ready >/dev/null; do sleep 1; done
curl -s -XPOST localhost:18099/api/v1/cameras -H 'content-type: application/json' -d '{"id":"soak","name":"soak","url":"rtsp://127.0.0.1:18654/cam0"}' >/dev/null
curl -s -XPOST localhost:18099/api/v1/cameras/soak/recording -H 'content-type: application/json' -d '{"enabled":true}' >/dev/null
START=$(date -u +%FT%TZ); log "recording from $START"
sleep 150
log "stopping s3rver for 2 minutes"; kill -9 $(cat $W/s3.pid)
for i in 1 2 3 4; do sleep 30; log "backlog: $(curl -s localhost:18099/metrics | grep -E '^vms_recording_backlog_(segments|bytes) ' | tr '\n' ' ')"; done
s3; log "s3rver back"
sleep 100
log "backlog after: $(curl -s localhost:18099/metrics | grep -E '^vms_recording_backlog_(segments|bytes) ' | tr '\n' ' ')"
FF=$(pgrep -f "ffmpeg.*18654/cam0 -map" | head -1); log "killing ffmpeg $FF mid-segment"; kill -9 $FF
sleep 250
END=$(date -u +%FT%TZ); log "until $END"
curl -s "localhost:18099/api/v1/recordings?cameraId=soak&from=$START&to=$END&limit=100" > $W/recordings.json
python3 - "$W/recordings.json" <<'PY' | tee -a $W/soak.log
import json,sys
items=json.load(open(sys.argv[1]))['items']
starts=[i['start'] for i in items]
print("rows", len(items), "duplicate starts", len(starts)-len(set(starts)), "keys", len(set(i.get('objectKey',i.get('id')) for i in items)))
PY
curl -s "localhost:18099/api/v1/cameras/soak/timeline?from=$START&to=$END" | python3 -c "import json,sys; d=json.load(sys.stdin); print('gaps', [(g['start'][11:19], g['end'][11:19]) for g in d['gaps']])" | tee -a $W/soak.log
# A 10-minute range that spans the gap.
FROM=$(python3 -c "import json; i=json.load(open('$W/recordings.json'))['items']; print(i[1]['start'])")
TO=$(python3 -c "import datetime as d; f=d.datetime.fromisoformat('$FROM'.replace('Z','+00:00')); print((f+d.timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')[:-4]+'Z')")
curl -s "localhost:18099/api/v1/cameras/soak/timeline?from=$FROM&to=$TO" > $W/tl.json
python3 -c "
import json,datetime as d
t=json.load(open('$W/tl.json')); p=lambda s: d.datetime.fromisoformat(s.replace('Z','+00:00'))
print('recorded in range', round(sum((p(r['end'])-p(r['start'])).total_seconds() for r in t['recorded']),2), 's; gaps', len(t['gaps']))" | tee -a $W/soak.log
curl -s -D $W/export.h -o $W/export.mp4 "localhost:18099/export/soak.mp4?from=$FROM&to=$TO"
log "export: $(grep -i '^HTTP\|content-length\|content-disposition\|x-export-ms' $W/export.h | tr '\r\n' '  ')"
log "export duration $(ffprobe -v error -show_entries format=duration -of csv=p=0 $W/export.mp4)"
ffmpeg -v error -i $W/export.mp4 -f null - 2>&1 | head -3 | tee -a $W/soak.log
curl -s -o /dev/null -w "range: %{http_code} %{size_download}\n" -H "Range: bytes=100-1099" "localhost:18099/export/soak.mp4?from=$FROM&to=$TO" | tee -a $W/soak.log
kill -INT $(cat $W/node.pid); kill -9 $(cat $W/s3.pid); kill $(cat $W/simpid)
log done
