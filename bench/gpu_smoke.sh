set -x
source .gpu/setup.sh
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
mkdir -p $OUT
python3 -m cnnbench train model=lenet dataset=mnist trainer.epochs=2 hydra.run.dir=/tmp/r1 2>&1 | tail -25
python3 -c "import json; m=json.load(open('/tmp/r1/metrics.json')); print({k: m.get(k) for k in ['status','test/acc','amp','device','train_seconds','images_per_s']})"
python3 -m cnnbench train trainer.resume=/tmp/r1 trainer.epochs=3 2>&1 | tail -6
python3 -c "import json; m=json.load(open('/tmp/r1/metrics.json')); print({k: m.get(k) for k in ['status','test/acc','epochs_run']})"
python3 -m cnnbench eval checkpoint=/tmp/r1 out=/tmp/e1 2>&1 | tail -8
python3 -m cnnbench export checkpoint=/tmp/r1 format=onnx out=/tmp/x.onnx 2>&1 | tail -4
python3 -m cnnbench train model=lenet dataset=mnist trainer.epochs=2 trainer.compile=true trainer.amp=fp16 hydra.run.dir=/tmp/r2 2>&1 | tail -4
python3 -c "import json; m=json.load(open('/tmp/r2/metrics.json')); print({k: m.get(k) for k in ['status','test/acc','amp','compile_seconds']})"
python3 -m cnnbench train dataset=synthetic optimizer=sgd optimizer.lr=1e12 trainer.epochs=2 hydra.run.dir=/tmp/r3 2>&1 | tail -5; echo "exit $?"
python3 -c "import json; m=json.load(open('/tmp/r3/metrics.json')); print({k: m.get(k) for k in ['status','reason','not_finite']})"
cp /tmp/r1/metrics.json $OUT/gpu_r1_metrics.json
