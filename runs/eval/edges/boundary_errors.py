"""Where the saved masks err, by distance to the true boundary, and grid oracles.

Run from the repository after boundary_masks.py: python runs/eval/edges/boundary_errors.py bear car-turn ...
"""
import sys, numpy as np, torch, cv2
from manet.inference.refine import GuidedUpsampler
from manet.eval.dataset import load_sequence, find_sequences
root='../shared/data/davis2016-480p-dev'
def J(g,m):
    u=(g|m).sum(); return 1.0 if u==0 else (g&m).sum()/u
tot={}
for name in sys.argv[1:]:
    d=np.load(f'runs/eval/edges/masks/{name}.npz'); gt=d['gt']>0
    h,w,wh,ww=np.load(f'runs/eval/edges/masks/{name}-meta.npy')
    seq=load_sequence(find_sequences(root,[name])[0]); frames=seq.frames
    T,H,W=gt.shape
    up=GuidedUpsampler((h,w),(wh,ww),(H,W),3.0,3e-4)
    jA=[];jB=[];jC=[]
    for t in range(T):
        f=cv2.resize(gt[t].astype(np.float32),(w,h),interpolation=cv2.INTER_AREA)
        l=np.log(np.clip(f,1e-4,1-1e-4)/np.clip(1-f,1e-4,1-1e-4)).clip(-10,10)
        logits=torch.from_numpy(np.stack([np.zeros_like(l),l])).float()
        mA=up.channels(logits,frames[t])>0
        mB=cv2.resize((f>0.5).astype(np.uint8),(W,H),interpolation=cv2.INTER_NEAREST)>0
        mC=cv2.resize(f,(W,H),interpolation=cv2.INTER_LINEAR)>0.5
        jA.append(J(gt[t],mA));jB.append(J(gt[t],mB));jC.append(J(gt[t],mC))
    line=f'{name:16s} oracle guided {np.mean(jA):.3f} majority-nearest {np.mean(jB):.3f} frac-bilinear {np.mean(jC):.3f}'
    for r in ('r1','r8'):
        m=d[r]>0; js=[J(gt[t],m[t]) for t in range(T)]
        # error decomposition by distance to GT boundary
        buckets=[4,8,16,32,1e9]; cnt=np.zeros(len(buckets)); un=0
        for t in range(T):
            b=gt[t].astype(np.uint8)
            edge=cv2.Canny(b*255,100,200)>0 if b.any() else np.zeros_like(gt[t])
            if edge.any():
                dist=cv2.distanceTransform((~edge).astype(np.uint8),cv2.DIST_L2,3)
            else: dist=np.full(gt[t].shape,1e6,np.float32)
            err=gt[t]^m[t]; un+=(gt[t]|m[t]).sum()
            prev=0
            for i,bk in enumerate(buckets):
                cnt[i]+=(err&(dist>prev)&(dist<=bk)).sum(); prev=bk
        line+=f' | {r} J {np.mean(js):.3f} loss by dist<=4,8,16,32,>32: '+' '.join(f'{c/un:.3f}' for c in cnt)
    print(line, flush=True)
